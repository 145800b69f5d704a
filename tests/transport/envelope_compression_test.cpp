// Snapshot chunk compression in the envelope codec (nodenomad/transport.hpp,
// version 2): what is compressed and what is not, round trips, and hostile
// compressed envelopes refused before anything large is allocated.
#include <zstd.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "nodenomad/raft/message_codec.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/transport.hpp"
#include "raft/byte_io.hpp"
#include "support/test_seed.hpp"
#include "transport/largest_allocation.hpp"

namespace nodenomad {
namespace {

using test_support::LargestAllocation;

constexpr std::size_t kMiB = 1u << 20;
// What decoding a hostile envelope of a few KiB may allocate at most (the
// frame-size bomb below declares 64 KiB, within every bound).
constexpr std::size_t kSmallAllocationBytes = 128u << 10;

Envelope snapshot_envelope(std::string data) {
  Envelope e;
  e.from = NodeId("node-1");
  e.to = NodeId("node-2");
  e.group = GroupId(17);
  e.kind = EnvelopeKind::kRaft;
  e.message.type = MessageType::kSnapshot;
  e.message.from = e.from;
  e.message.to = e.to;
  e.message.term = Term(5);
  SnapshotChunk& chunk = e.message.snapshot;
  chunk.meta.index = LogIndex(1200);
  chunk.meta.term = Term(4);
  chunk.meta.conf_state.voters = {NodeId("node-1"), NodeId("node-3")};
  chunk.meta.conf_state.learners = {NodeId("node-2")};
  chunk.transfer_id = 9;
  chunk.offset = 3 * kMiB;
  chunk.data = std::move(data);
  return e;
}

// Words from a small vocabulary with numbers: compresses about 3-4x.
std::string text_bytes(std::size_t bytes, Rng& rng) {
  static constexpr std::string_view kWords[] = {"alpha",   "bravo", "charlie", "delta", "echo",
                                                "foxtrot", "golf",  "hotel",   "india", "juliet"};
  std::string out;
  while (out.size() < bytes) {
    out += kWords[rng.uniform(std::size(kWords))];
    out += rng.chance(0.2) ? std::to_string(rng.uniform(100000)) : " ";
  }
  out.resize(bytes);
  return out;
}

std::string random_bytes(std::size_t bytes, Rng& rng) {
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(rng.uniform(256));
  return out;
}

std::uint8_t version_of(std::string_view encoded) { return static_cast<std::uint8_t>(encoded[0]); }

// Decodes `encoded` and checks it gives `expected` back.
void check_round_trip(const std::string& encoded, const Envelope& expected) {
  const Result<Envelope> decoded = decode_envelope(encoded);
  REQUIRE(decoded.is_ok());
  CHECK(*decoded == expected);
}

// A version 1 raft envelope as it was written before compression existed.
std::string v1_bytes(const Envelope& e) {
  std::string out;
  raft_io::ByteWriter w(out);
  w.u8(1);
  w.u8(1);
  w.bytes(e.from.str());
  w.bytes(e.to.str());
  w.varint(e.group.value());
  return out + encode_message(e.message);
}

// A version 2 envelope written field by field, so a test can put anything
// in any field. `message` is `chunk`'s envelope message with `frame` as data.
struct Compressed {
  std::uint8_t compression = 1;
  std::uint64_t raw_bytes = 0;
  std::string padding;
  std::string frame;
};

// Version, kind, sender, receiver and group of snapshot_envelope().
std::string v2_header() {
  const Envelope e = snapshot_envelope("");
  std::string out;
  raft_io::ByteWriter w(out);
  w.u8(2);
  w.u8(1);
  w.bytes(e.from.str());
  w.bytes(e.to.str());
  w.varint(e.group.value());
  return out;
}

std::string write_v2(const Compressed& c, MessageType type = MessageType::kSnapshot) {
  Envelope e = snapshot_envelope(c.frame);
  e.message.type = type;
  std::string out = v2_header();
  raft_io::ByteWriter w(out);
  w.u8(c.compression);
  w.varint(c.raw_bytes);
  w.bytes(c.padding);
  encode_message_to(e.message, out);
  return out;
}

// A zstd frame of `raw`, with or without the content size and checksum.
std::string zstd_frame(std::string_view raw, bool content_size = true, bool checksum = true) {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  REQUIRE(context != nullptr);
  REQUIRE(ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, content_size)) == 0);
  REQUIRE(ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum)) == 0);
  std::string frame(ZSTD_compressBound(raw.size()), '\0');
  const std::size_t n = ZSTD_compress2(context, frame.data(), frame.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(context);
  REQUIRE(ZSTD_isError(n) == 0);
  frame.resize(n);
  return frame;
}

// Decodes hostile bytes: kCorruption whose message holds `field`, and no
// allocation beyond kSmallAllocationBytes on the way.
void check_refused(const std::string& encoded, std::string_view field) {
  INFO("encoded " << encoded.size() << " bytes; expecting '" << field << "'");
  std::size_t largest = 0;
  Status status;
  {
    LargestAllocation watch;
    Result<Envelope> decoded = decode_envelope(encoded);
    largest = watch.bytes();
    if (!decoded.is_ok()) status = decoded.status();
  }
  REQUIRE_FALSE(status.is_ok());
  CHECK(status.is(StatusCode::kCorruption));
  INFO(status.to_string());
  CHECK(status.message().find(field) != std::string::npos);
  CHECK(largest <= kSmallAllocationBytes);
}

TEST_CASE("compression: compressible chunks travel compressed and come back equal",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("compressible chunks", 51));
  for (const std::size_t bytes : {kMinCompressedChunkBytes, std::size_t{64} << 10, kMiB}) {
    INFO("chunk of " << bytes << " bytes");
    const Envelope e = snapshot_envelope(text_bytes(bytes, rng));
    const std::string compressed = encode_envelope(e);
    CHECK(version_of(compressed) == 2);
    CHECK(compressed.size() <= bytes - bytes / 8);
    check_round_trip(compressed, e);

    const std::string plain = encode_envelope(e, {.compress_snapshot_chunks = false});
    CHECK(version_of(plain) == 1);
    CHECK(plain.size() > bytes);
    check_round_trip(plain, e);
    CHECK(plain == v1_bytes(e));
  }
}

TEST_CASE("compression: small, incompressible and other payloads are sent as they are",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("uncompressed payloads", 52));
  const std::string zeros(kMinCompressedChunkBytes - 1, '\0');
  const Envelope small = snapshot_envelope(zeros);
  CHECK(version_of(encode_envelope(small)) == 1);

  const Envelope random = snapshot_envelope(random_bytes(kMiB, rng));
  const std::string encoded = encode_envelope(random);
  CHECK(version_of(encoded) == 1);
  CHECK(encoded == encode_envelope(random, {.compress_snapshot_chunks = false}));
  check_round_trip(encoded, random);

  // An append of 1 MiB of zeros, a response to a snapshot, a request: never.
  Envelope append = snapshot_envelope("");
  append.message.type = MessageType::kAppend;
  append.message.snapshot = {};
  append.message.entries.push_back(
      Entry{Term(5), LogIndex(9), EntryType::kNormal, std::string(kMiB, '\0')});
  CHECK(version_of(encode_envelope(append)) == 1);
  Envelope response = snapshot_envelope(std::string(kMiB, '\0'));
  response.message.type = MessageType::kSnapshotResponse;
  CHECK(version_of(encode_envelope(response)) == 1);
  Envelope request;
  request.kind = EnvelopeKind::kRequest;
  request.payload = std::string(kMiB, '\0');
  CHECK(version_of(encode_envelope(request)) == 1);
}

TEST_CASE("compression: sent compressed only when it saves at least 1/8",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("saving threshold", 53));
  // Zeros compress to almost nothing, random bytes not at all: a chunk
  // with 1/8 - 1/64 of zeros saves less than 1/8, one with 1/4 more.
  const auto chunk = [&](std::size_t zero_bytes) {
    return snapshot_envelope(random_bytes(kMiB - zero_bytes, rng) + std::string(zero_bytes, '\0'));
  };
  const Envelope short_of_it = chunk(kMiB / 8 - kMiB / 64);
  CHECK(version_of(encode_envelope(short_of_it)) == 1);
  // The thread's zstd context, stopped mid-frame by the attempt above,
  // compresses the next chunk.
  const Envelope enough = chunk(kMiB / 4);
  const std::string encoded = encode_envelope(enough);
  CHECK(version_of(encoded) == 2);
  check_round_trip(encoded, enough);
}

TEST_CASE("compression: a chunk zstd shrinks more than 16x is padded to 1/16",
          "[transport][compression]") {
  const Envelope zeros = snapshot_envelope(std::string(kMiB, '\0'));
  const std::string encoded = encode_envelope(zeros);
  CHECK(version_of(encoded) == 2);
  CHECK(encoded.size() >= kMiB / kMaxChunkExpansion);
  CHECK(encoded.size() <= kMiB / kMaxChunkExpansion + 256);
  check_round_trip(encoded, zeros);
}

TEST_CASE("compression: the levels the option allows all decode", "[transport][compression]") {
  Rng rng(test_support::test_seed("levels", 54));
  const Envelope e = snapshot_envelope(text_bytes(256u << 10, rng));
  std::size_t fastest = 0;
  std::size_t level_3 = 0;
  for (const int level : {-5, -1, 1, 3}) {
    INFO("level " << level);
    const std::string encoded = encode_envelope(e, {.zstd_level = level});
    CHECK(version_of(encoded) == 2);
    check_round_trip(encoded, e);
    if (level == -5) fastest = encoded.size();
    if (level == 3) level_3 = encoded.size();
  }
  CHECK(level_3 < fastest);
}

TEST_CASE("compression: the allocation watch sees a valid chunk's buffer (control)",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("allocation control", 59));
  const std::string encoded = encode_envelope(snapshot_envelope(text_bytes(kMiB, rng)));
  REQUIRE(version_of(encoded) == 2);
  LargestAllocation watch;
  REQUIRE(decode_envelope(encoded).is_ok());
  CHECK(watch.bytes() >= kMiB);
}

TEST_CASE("compression: a declared size missing, out of bounds or beyond 16x is refused",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("declared sizes", 55));
  const std::string raw = text_bytes(64u << 10, rng);
  const Compressed valid{1, raw.size(), "", zstd_frame(raw)};
  REQUIRE(decode_envelope(write_v2(valid)).is_ok());

  // Cut right after the compression byte: no declared size.
  check_refused(v2_header() + '\x01', "the decompressed size is missing");

  Compressed claim = valid;
  claim.raw_bytes = std::uint64_t{1} << 30;
  check_refused(write_v2(claim), "the decompressed size 1073741824");
  claim.raw_bytes = kMaxSnapshotChunkBytes + 1;
  check_refused(write_v2(claim), "not within 1 .. 33554432");
  claim.raw_bytes = 0;
  check_refused(write_v2(claim), "not within");

  // 32 MiB of zeros is a real zstd frame of about 1 KiB.
  const std::string bomb = zstd_frame(std::string(kMaxSnapshotChunkBytes, '\0'));
  REQUIRE(bomb.size() < kMaxSnapshotChunkBytes / kMaxChunkExpansion);
  check_refused(write_v2({1, kMaxSnapshotChunkBytes, "", bomb}), "more than 16 times");

  Compressed other = valid;
  other.compression = 2;
  check_refused(write_v2(other), "compression 2 is not 1 (zstd)");
  Compressed garbage_padding = valid;
  garbage_padding.padding = std::string(100, '\0') + "x";
  check_refused(write_v2(garbage_padding), "padding holds a byte other than zero");
  check_refused(write_v2(valid, MessageType::kAppend), "compressed chunk data in a raft append");
}

TEST_CASE("compression: a frame that declares another size, or none, or produces more is refused",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("frame sizes", 56));
  const std::string raw = text_bytes(64u << 10, rng);
  check_refused(write_v2({1, raw.size(), "", zstd_frame(raw, false)}),
                "does not declare its decompressed size");
  check_refused(write_v2({1, raw.size() - 1, "", zstd_frame(raw)}),
                "declares 65536 decompressed bytes, the envelope 65535");
  check_refused(write_v2({1, raw.size(), "", zstd_frame(raw, true, false)}),
                "carries no content checksum");
  check_refused(write_v2({1, raw.size(), "", zstd_frame(raw) + zstd_frame(raw)}),
                "bytes follow the zstd frame");
  // A skippable frame (magic 0x184D2A50, a 4-byte length, content).
  std::string skippable = std::string("\x50\x2a\x4d\x18\x00\x10\x00\x00", 8);
  skippable += std::string(4096, 'x');
  check_refused(write_v2({1, 4096, "", skippable}), "are not a zstd frame");

  // A bomb: 32 MiB of zeros whose header is patched to declare 64 KiB (the
  // 4-byte content size after the magic number, the descriptor and the
  // window byte). The envelope's claim and padding are in bounds: zstd
  // must stop at the 64 KiB buffer instead of producing 32 MiB.
  std::string bomb = zstd_frame(std::string(kMaxSnapshotChunkBytes, '\0'));
  const auto descriptor = static_cast<std::uint8_t>(bomb[4]);
  REQUIRE((descriptor >> 6) == 2);    // a 4-byte content size
  REQUIRE((descriptor & 0x20) == 0);  // a window byte, so the size is at 6
  REQUIRE((descriptor & 0x03) == 0);  // no dictionary id
  const std::uint32_t declared = 64u << 10;
  for (int i = 0; i < 4; ++i) bomb[6 + i] = static_cast<char>(declared >> (8 * i));
  REQUIRE(ZSTD_getFrameContentSize(bomb.data(), bomb.size()) == declared);
  const std::string padding(declared / kMaxChunkExpansion, '\0');
  check_refused(write_v2({1, declared, padding, bomb}), "the compressed snapshot chunk data");
}

TEST_CASE("compression: truncated and damaged frames are refused; nothing else is accepted",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("damaged frames", 57));
  const std::string raw = text_bytes(8u << 10, rng);
  const std::string frame = zstd_frame(raw);
  const Envelope original = snapshot_envelope(raw);
  for (std::size_t n = 0; n < frame.size(); ++n) {
    const Result<Envelope> cut = decode_envelope(write_v2({1, raw.size(), "", frame.substr(0, n)}));
    REQUIRE_FALSE(cut.is_ok());
    CHECK(cut.status().is(StatusCode::kCorruption));
  }
  // One flipped bit per byte, at a random bit: refused, or the very same
  // chunk (the checksum says so) when the bit did not matter, such as an
  // unused bit of an entropy table or a larger window.
  std::size_t accepted = 0;
  for (std::size_t at = 0; at < frame.size(); ++at) {
    std::string damaged = frame;
    damaged[at] = static_cast<char>(damaged[at] ^ (1u << rng.uniform(8)));
    const Result<Envelope> decoded = decode_envelope(write_v2({1, raw.size(), "", damaged}));
    if (decoded.is_ok()) {
      INFO("flipped a bit of byte " << at << " of " << frame.size());
      CHECK(*decoded == original);
      ++accepted;
    } else {
      CHECK(decoded.status().is(StatusCode::kCorruption));
    }
  }
  CHECK(accepted <= frame.size() / 100);
}

TEST_CASE("compression: every cut of a compressed envelope is refused",
          "[transport][compression]") {
  Rng rng(test_support::test_seed("cut envelopes", 58));
  const std::string encoded = encode_envelope(snapshot_envelope(text_bytes(8u << 10, rng)));
  REQUIRE(version_of(encoded) == 2);
  for (std::size_t n = 0; n < encoded.size(); ++n) {
    const Result<Envelope> cut = decode_envelope(std::string_view(encoded).substr(0, n));
    REQUIRE_FALSE(cut.is_ok());
    CHECK(cut.status().is(StatusCode::kCorruption));
  }
  CHECK_FALSE(decode_envelope(encoded + '\0').is_ok());
  std::string request_v2 = encode_envelope(snapshot_envelope(""));
  request_v2[0] = 2;
  request_v2[1] = 2;
  check_refused(request_v2, "format version 2 carries raft messages only");
  std::string version_3 = encoded;
  version_3[0] = 3;
  check_refused(version_3, "format version 3 is not the supported 1 or 2");
}

}  // namespace
}  // namespace nodenomad
