// The peer wire format without sockets: frames, the streaming decoder, the
// handshake reader, addresses.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "net/peer_frame.hpp"
#include "nodenomad/rng.hpp"
#include "support/test_seed.hpp"

namespace nodenomad::net {
namespace {

Envelope request(std::uint64_t id, std::string payload) {
  Envelope e;
  e.from = NodeId("node-1");
  e.to = NodeId("node-2");
  e.group = GroupId(7);
  e.kind = EnvelopeKind::kRequest;
  e.request_id = id;
  e.payload = std::move(payload);
  return e;
}

Envelope raft(std::uint64_t term) {
  Envelope e;
  e.from = NodeId("node-2");
  e.to = NodeId("node-1");
  e.group = GroupId(3);
  e.kind = EnvelopeKind::kRaft;
  e.message.type = MessageType::kAppend;
  e.message.from = e.from;
  e.message.to = e.to;
  e.message.term = Term(term);
  e.message.entries.push_back(Entry{Term(term), LogIndex(4), EntryType::kNormal, "data"});
  return e;
}

std::string frame_of(const std::vector<Envelope>& envelopes) {
  std::string out;
  const std::size_t offset = begin_frame(out);
  for (const Envelope& e : envelopes) append_record(out, encode_envelope(e));
  finish_frame(out, offset);
  return out;
}

}  // namespace

TEST_CASE("a frame carries several envelopes and decodes to the same ones", "[net][frame]") {
  const std::vector<Envelope> sent = {request(1, "a"), raft(5), request(2, std::string(300, 'x'))};
  FrameDecoder decoder(1 << 20);
  decoder.append(frame_of(sent));
  const FrameStep step = decoder.next();
  REQUIRE(step.status == FrameStatus::kFrame);
  std::vector<Envelope> received;
  REQUIRE(decode_frame_payload(step.payload, received).is_ok());
  CHECK(received == sent);
  CHECK(decoder.next().status == FrameStatus::kNeedMore);
  CHECK(decoder.buffered_bytes() == 0);
}

TEST_CASE("the decoder reassembles frames split at any byte", "[net][frame]") {
  const std::uint64_t seed = test_support::test_seed("frame split", 11);
  Rng rng(seed);
  std::string stream;
  std::vector<Envelope> sent;
  for (std::uint64_t i = 0; i < 50; ++i) {
    std::vector<Envelope> batch;
    const std::uint64_t count = rng.uniform(4);  // 0 = a keepalive
    for (std::uint64_t j = 0; j < count; ++j) batch.push_back(request(i * 10 + j, "p"));
    stream += frame_of(batch);
    sent.insert(sent.end(), batch.begin(), batch.end());
  }
  FrameDecoder decoder(1 << 20);
  std::vector<Envelope> received;
  for (std::size_t at = 0; at < stream.size();) {
    const std::size_t n = std::min<std::size_t>(1 + rng.uniform(40), stream.size() - at);
    decoder.append(std::string_view(stream).substr(at, n));
    at += n;
    for (FrameStep step = decoder.next(); step.status == FrameStatus::kFrame;
         step = decoder.next()) {
      REQUIRE(decode_frame_payload(step.payload, received).is_ok());
    }
  }
  CHECK(received == sent);
  CHECK(decoder.buffered_bytes() == 0);
}

TEST_CASE("a gathered frame is byte for byte the copied one, large records left in place",
          "[net][frame]") {
  const std::uint64_t seed = test_support::test_seed("gathered frame", 12);
  Rng rng(seed);
  constexpr std::size_t kLarge = GatheredFrame::kCopyBelowBytes;
  const std::vector<std::size_t> sizes = {0, 1, 127, 128, kLarge - 1, kLarge, kLarge + 1, 1 << 20};
  GatheredFrame frame;  // reused, as a link does
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> records;
    const std::uint64_t count = rng.uniform(6);  // 0 = a keepalive
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::size_t size = round < 8 && i == 0 ? sizes[static_cast<std::size_t>(round)]
                                                   : sizes[rng.uniform(sizes.size())];
      records.emplace_back(size, static_cast<char>('a' + rng.uniform(26)));
    }
    std::string copied;
    const std::size_t offset = begin_frame(copied);
    for (const std::string& r : records) append_record(copied, r);
    finish_frame(copied, offset);

    frame.begin();
    for (const std::string& r : records) frame.add_record(r);
    frame.finish();
    std::string gathered;
    std::size_t referenced = 0;
    for (std::string_view piece : frame.pieces()) {
      gathered.append(piece);
      for (const std::string& r : records) {
        if (r.size() >= kLarge && piece.data() == r.data()) {
          CHECK(piece.size() == r.size());
          ++referenced;
        }
      }
    }
    INFO("seed " << seed << ", round " << round << ", " << count << " records");
    REQUIRE(gathered == copied);
    CHECK(frame.size() == copied.size());
    CHECK(referenced == static_cast<std::size_t>(std::count_if(
                            records.begin(), records.end(),
                            [](const std::string& r) { return r.size() >= kLarge; })));
  }
}

TEST_CASE("a frame's appended entries are slices of it, and the decoder leaves it to them",
          "[net][frame]") {
  const std::uint64_t seed = test_support::test_seed("frame slices", 12);
  Rng rng(seed);
  Envelope append = raft(7);
  append.message.entries.clear();
  for (std::uint64_t i = 1; i <= 20; ++i) {
    append.message.entries.push_back(Entry{Term(7), LogIndex(i), EntryType::kNormal,
                                           std::string(1024, static_cast<char>('a' + i))});
  }
  // Mostly a request's payload: its one small entry is copied, not sliced.
  const std::vector<Envelope> other = {request(1, std::string(100'000, 'r')), raft(8)};
  const std::string stream = frame_of({append}) + frame_of(other) + frame_of({append});

  FrameDecoder decoder(1 << 20);
  std::vector<Envelope> received;
  std::vector<std::weak_ptr<const std::string>> owners;
  std::size_t last_frame_bytes = 0;
  bool last_frame_sliced = false;
  std::size_t fresh_buffers = 0;
  for (std::size_t at = 0; at < stream.size();) {
    const std::size_t n = std::min<std::size_t>(1 + rng.uniform(9000), stream.size() - at);
    decoder.append(std::string_view(stream).substr(at, n));
    at += n;
    if (last_frame_sliced) {
      // The buffer left to the slices is replaced by one with room for a
      // frame as large as the last, so a frame does not regrow it by doubling.
      CHECK(decoder.capacity() >= last_frame_bytes);
      ++fresh_buffers;
      last_frame_sliced = false;
    }
    for (FrameStep step = decoder.next(); step.status == FrameStatus::kFrame;
         step = decoder.next()) {
      REQUIRE(decode_frame_payload(step.payload, received, step.owner).is_ok());
      owners.push_back(step.owner);
      last_frame_bytes = step.payload.size() + kFrameHeaderBytes;
      const std::vector<Entry>& entries = received.back().message.entries;
      last_frame_sliced = !entries.empty() && entries.front().data.shares_owner();
    }
  }
  CHECK(fresh_buffers == 1);  // after the first frame; the last one ends the stream
  // Every byte as sent, though the decoder took more bytes after each frame.
  REQUIRE(received.size() == 4);
  CHECK(received[0] == append);
  CHECK(received[1] == other[0]);
  CHECK(received[2] == other[1]);
  CHECK(received[3] == append);
  for (const Entry& e : received[0].message.entries) CHECK(e.data.shares_owner());
  for (const Entry& e : received[3].message.entries) CHECK(e.data.shares_owner());
  CHECK_FALSE(received[2].message.entries.front().data.shares_owner());
  REQUIRE(owners.size() == 3);
  CHECK(owners[0].lock() != owners[2].lock());
  // Once the entries are gone, so is the buffer they held.
  received.clear();
  CHECK(owners[0].expired());
  CHECK(decoder.buffered_bytes() == 0);
}

TEST_CASE("a gathered frame of envelopes decodes to the same envelopes", "[net][frame]") {
  const std::vector<Envelope> sent = {request(1, std::string(100'000, 'y')), raft(5),
                                      request(2, "small")};
  std::vector<std::string> encoded;
  for (const Envelope& e : sent) encoded.push_back(encode_envelope(e));
  GatheredFrame frame;
  frame.begin();
  for (const std::string& e : encoded) frame.add_record(e);
  frame.finish();
  CHECK(frame.pieces().size() == 3);  // header and a length; the large one; the rest
  FrameDecoder decoder(1 << 20);
  for (std::string_view piece : frame.pieces()) decoder.append(piece);
  const FrameStep step = decoder.next();
  REQUIRE(step.status == FrameStatus::kFrame);
  std::vector<Envelope> received;
  REQUIRE(decode_frame_payload(step.payload, received).is_ok());
  CHECK(received == sent);
}

TEST_CASE("a header claiming more than the bound is refused before its payload",
          "[net][frame]") {
  FrameDecoder decoder(4096);
  decoder.append(encode_frame_header(0xfffffff0u, 0));
  const FrameStep step = decoder.next();
  CHECK(step.status == FrameStatus::kTooLarge);
  CHECK(step.claimed_bytes == 0xfffffff0u);
  // Only the 16 header bytes were ever buffered, and the error is final.
  CHECK(decoder.buffered_bytes() == kFrameHeaderBytes);
  decoder.append(std::string(100, 'x'));
  CHECK(decoder.next().status == FrameStatus::kTooLarge);
  CHECK(decoder.buffered_bytes() == kFrameHeaderBytes);
}

TEST_CASE("damaged frames fail their checksums", "[net][frame]") {
  const std::string good = frame_of({request(1, "payload")});
  SECTION("a payload bit") {
    std::string bad = good;
    bad.back() = static_cast<char>(bad.back() ^ 0x01);
    FrameDecoder decoder(4096);
    decoder.append(bad);
    CHECK(decoder.next().status == FrameStatus::kBadChecksum);
  }
  SECTION("a length bit, caught before the length is trusted") {
    std::string bad = good;
    bad[0] = static_cast<char>(bad[0] ^ 0x40);
    FrameDecoder decoder(4096);
    decoder.append(bad.substr(0, kFrameHeaderBytes));
    CHECK(decoder.next().status == FrameStatus::kBadChecksum);
  }
}

TEST_CASE("a checksummed frame with a malformed record is corruption", "[net][frame]") {
  std::string payload;
  append_record(payload, "\x01\x09not-an-envelope");
  std::vector<Envelope> out;
  const Status status = decode_frame_payload(payload, out);
  CHECK(status.is(StatusCode::kCorruption));
  CHECK_THAT(std::string(status.message()), Catch::Contains("frame record 0"));
  CHECK(decode_frame_payload("\x05\x01", out).is(StatusCode::kCorruption));
}

TEST_CASE("the opening tells peers, foreign clients and garbage apart", "[net][handshake]") {
  CHECK(classify_opening("G") == Opening::kForeign);
  CHECK(classify_opening(std::string_view("\0", 1)) == Opening::kNeedMore);
  CHECK(classify_opening(std::string_view("\0NN", 3)) == Opening::kNeedMore);
  CHECK(classify_opening(std::string_view("\0NNP\x01", 5)) == Opening::kPeer);
  CHECK(classify_opening(std::string_view("\0XY", 3)) == Opening::kNotPeer);
  CHECK(classify_opening(std::string_view("\0NNQ", 4)) == Opening::kNotPeer);
}

TEST_CASE("a hello read byte by byte", "[net][handshake]") {
  const Hello hello{HelloType::kHello, "cluster-a", NodeId("node-1"), NodeId("node-2"), {}};
  const std::string bytes = encode_hello(hello) + "extra";
  HelloReader reader;
  CHECK(reader.opening_bytes_missing() == kOpeningBytes);
  HelloReader::State state = HelloReader::State::kNeedMore;
  for (char c : bytes) {
    if (state != HelloReader::State::kNeedMore) break;
    state = reader.feed(std::string_view(&c, 1));
  }
  REQUIRE(state == HelloReader::State::kDone);
  CHECK(reader.hello() == hello);
  CHECK(reader.leftover().empty());  // the bytes after the frame were never fed
  HelloReader whole;
  REQUIRE(whole.feed(bytes) == HelloReader::State::kDone);
  CHECK(whole.leftover() == "extra");
}

TEST_CASE("the hello reader refuses what is not a current hello", "[net][handshake]") {
  SECTION("an HTTP request is foreign after its first byte") {
    HelloReader reader;
    CHECK(reader.feed("G") == HelloReader::State::kForeign);
    CHECK(reader.received() == "G");
  }
  SECTION("NUL then garbage") {
    HelloReader reader;
    CHECK(reader.feed(std::string_view("\0garbage", 8)) == HelloReader::State::kNotPeer);
  }
  SECTION("another protocol version") {
    HelloReader reader;
    const Hello hello{HelloType::kHello, "c", NodeId("n"), NodeId("m"), {}};
    CHECK(reader.feed(encode_hello(hello, 9)) == HelloReader::State::kVersionMismatch);
    CHECK(reader.peer_version() == 9);
  }
  SECTION("a handshake frame above its bound") {
    HelloReader reader;
    std::string bytes;
    encode_opening(bytes);
    bytes += encode_frame_header(kMaxHelloBytes + 1, 0);
    CHECK(reader.feed(bytes) == HelloReader::State::kBadFrame);
    CHECK_THAT(reader.error(), Catch::Contains("above the bound"));
  }
  SECTION("an empty sender") {
    HelloReader reader;
    const Hello hello{HelloType::kHello, "c", NodeId(""), NodeId("m"), {}};
    CHECK(reader.feed(encode_hello(hello)) == HelloReader::State::kBadFrame);
  }
}

TEST_CASE("host:port addresses", "[net]") {
  const auto v4 = parse_host_port("127.0.0.1:3000");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 3000);
  const auto v6 = parse_host_port("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);
  CHECK(parse_host_port("node-1:3001")->host == "node-1");
  CHECK_FALSE(parse_host_port("node-1"));
  CHECK_FALSE(parse_host_port(":3000"));
  CHECK_FALSE(parse_host_port("host:"));
  CHECK_FALSE(parse_host_port("host:65536"));
  CHECK_FALSE(parse_host_port("host:12x"));
  CHECK_FALSE(parse_host_port("::1:3000"));
}

}  // namespace nodenomad::net
