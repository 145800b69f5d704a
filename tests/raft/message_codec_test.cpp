// The Raft wire encoding: round trips of every message type, and hostile
// bytes that must fail cleanly (truncations, random bytes, lying counts).
#include <catch2/catch.hpp>

#include "nodenomad/raft/conf_change.hpp"
#include "nodenomad/raft/message_codec.hpp"
#include "nodenomad/rng.hpp"
#include "raft/raft_harness.hpp"

namespace nodenomad {
namespace {

Message full_message(MessageType type) {
  Message m;
  m.type = type;
  m.from = NodeId("node-1");
  m.to = NodeId("node-22");
  m.term = Term(7);
  m.index = LogIndex(1ull << 40);
  m.log_term = Term(6);
  m.commit = LogIndex(99);
  m.reject = true;
  m.hint_index = LogIndex(17);
  m.hint_term = Term(3);
  m.transfer = true;
  m.round = 123456789;
  m.context = std::string("ctx\0with zero", 13);
  m.entries = {Entry{Term(6), LogIndex((1ull << 40) + 1), EntryType::kNormal, "set a=1"},
               Entry{Term(7), LogIndex((1ull << 40) + 2), EntryType::kConfChange, ""}};
  m.snapshot.meta.index = LogIndex(500);
  m.snapshot.meta.term = Term(5);
  m.snapshot.meta.conf_state.voters = {NodeId("a"), NodeId("b")};
  m.snapshot.meta.conf_state.learners = {NodeId("c")};
  m.snapshot.meta.conf_state.voters_outgoing = {NodeId("a"), NodeId("d")};
  m.snapshot.meta.conf_state.learners_next = {NodeId("d")};
  m.snapshot.meta.conf_state.auto_leave = true;
  m.snapshot.transfer_id = UINT64_MAX;
  m.snapshot.offset = 1u << 20;
  m.snapshot.data = std::string(1000, '\xff');
  m.snapshot.last = true;
  return m;
}

TEST_CASE("raft codec: every message type round-trips with every field", "[raft][codec]") {
  for (std::uint8_t t = 1; t <= kMaxMessageType; ++t) {
    const Message m = full_message(static_cast<MessageType>(t));
    const Result<Message> decoded = decode_message(encode_message(m));
    REQUIRE(decoded.is_ok());
    CHECK(*decoded == m);
  }
}

TEST_CASE("raft codec: a default heartbeat is small", "[raft][codec]") {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = NodeId("n1");
  m.to = NodeId("n2");
  m.term = Term(3);
  m.commit = LogIndex(10);
  m.round = 4;
  const std::string bytes = encode_message(m);
  CHECK(bytes.size() < 24);
  const Result<Message> decoded = decode_message(bytes);
  REQUIRE(decoded.is_ok());
  CHECK(*decoded == m);
}

TEST_CASE("raft codec: every truncation of a message is refused", "[raft][codec]") {
  const std::string bytes = encode_message(full_message(MessageType::kAppend));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const Result<Message> decoded = decode_message(std::string_view(bytes).substr(0, n));
    INFO("prefix of " << n << " bytes");
    REQUIRE_FALSE(decoded.is_ok());
    CHECK(decoded.status().is(StatusCode::kCorruption));
  }
}

TEST_CASE("raft codec: trailing bytes, unknown versions, types and flags are refused",
          "[raft][codec]") {
  const std::string bytes = encode_message(full_message(MessageType::kVote));
  CHECK_FALSE(decode_message(bytes + "x").is_ok());
  std::string bad = bytes;
  bad[0] = 2;  // version
  CHECK_FALSE(decode_message(bad).is_ok());
  bad = bytes;
  bad[1] = 0;  // type
  CHECK_FALSE(decode_message(bad).is_ok());
  bad[1] = static_cast<char>(kMaxMessageType + 1);
  CHECK_FALSE(decode_message(bad).is_ok());
  bad = bytes;
  bad[2] = static_cast<char>(0x80);  // unknown flag
  CHECK_FALSE(decode_message(bad).is_ok());
}

TEST_CASE("raft codec: a count larger than the input is refused before allocating",
          "[raft][codec]") {
  // Header, empty names, zero counters, empty context, then an entry count
  // of 2^62: the decoder must refuse it from the byte count alone.
  std::string bytes = {1, static_cast<char>(MessageType::kAppend), 0};
  bytes += std::string(2, '\0');  // from, to
  bytes += std::string(6, '\0');  // term .. hint_term
  bytes += std::string(1, '\0');  // round
  bytes += std::string(1, '\0');  // context
  std::uint64_t count = 1ull << 62;
  while (count >= 0x80) {
    bytes.push_back(static_cast<char>((count & 0x7f) | 0x80));
    count >>= 7;
  }
  bytes.push_back(static_cast<char>(count));
  const Result<Message> decoded = decode_message(bytes);
  REQUIRE_FALSE(decoded.is_ok());
  CHECK(decoded.status().is(StatusCode::kCorruption));
  // A string length past the end is refused the same way.
  std::string name = {1, static_cast<char>(MessageType::kHeartbeat), 0,
                      static_cast<char>(0xff), static_cast<char>(0xff), 0x7f};
  CHECK_FALSE(decode_message(name).is_ok());
  // An over-long varint (11 bytes) is refused.
  std::string varint = {1, static_cast<char>(MessageType::kHeartbeat), 0, 0, 0};
  varint += std::string(10, static_cast<char>(0xff));
  varint.push_back(1);
  CHECK_FALSE(decode_message(varint).is_ok());
}

TEST_CASE("raft codec: random and mutated bytes never crash the decoder", "[raft][codec]") {
  Rng rng(raft_test::test_seed("raft codec fuzz"));
  const std::string valid = encode_message(full_message(MessageType::kSnapshot));
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(rng.uniform(64));
      for (char& c : bytes) c = static_cast<char>(rng.uniform(256));
    } else {
      bytes = valid;
      const std::uint64_t flips = 1 + rng.uniform(4);
      for (std::uint64_t f = 0; f < flips; ++f) {
        bytes[rng.uniform(bytes.size())] = static_cast<char>(rng.uniform(256));
      }
    }
    const Result<Message> decoded = decode_message(bytes);
    if (decoded.is_ok()) {
      ++accepted;
      // Whatever decodes re-encodes to a message that decodes the same.
      const Result<Message> again = decode_message(encode_message(*decoded));
      REQUIRE(again.is_ok());
      CHECK(*again == *decoded);
    }
  }
  CHECK(accepted < 20000);
}

TEST_CASE("raft codec: conf changes round-trip and malformed ones are refused",
          "[raft][codec][membership]") {
  ConfChange change;
  change.transition = ConfChangeTransition::kJointExplicit;
  change.changes = {{ConfChangeType::kAddVoter, NodeId("n4")},
                    {ConfChangeType::kAddLearner, NodeId("n5")},
                    {ConfChangeType::kRemoveNode, NodeId("n1")}};
  const std::string bytes = encode_conf_change(change);
  const Result<ConfChange> decoded = decode_conf_change(bytes);
  REQUIRE(decoded.is_ok());
  CHECK(*decoded == change);
  CHECK(decode_conf_change(encode_conf_change(ConfChange{}))->leaves_joint());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_FALSE(decode_conf_change(std::string_view(bytes).substr(0, n)).is_ok());
  }
  CHECK_FALSE(decode_conf_change(bytes + "x").is_ok());
  std::string bad = bytes;
  bad[1] = 9;  // transition
  CHECK_FALSE(decode_conf_change(bad).is_ok());
}

}  // namespace
}  // namespace nodenomad
