// The per-link history that stops trying zstd on snapshot transfers that do
// not compress (transport/chunk_compression_history.hpp): which chunks are
// tried, that compressible data is encoded exactly as without a history,
// that data turning compressible is compressed again, the bounds, and the
// off switch. Decisions are read from ChunkEncoding, the frame's version
// byte and the history's counts: nothing here is timed.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/transport.hpp"
#include "support/test_seed.hpp"
#include "transport/chunk_compression_history.hpp"

namespace nodenomad {
namespace {

using History = ChunkCompressionHistory;

constexpr std::size_t kChunkBytes = 16u << 10;

Envelope chunk_envelope(std::string data, std::uint64_t transfer_id = 9,
                        GroupId group = GroupId(17)) {
  Envelope e;
  e.from = NodeId("node-1");
  e.to = NodeId("node-2");
  e.group = group;
  e.kind = EnvelopeKind::kRaft;
  e.message.type = MessageType::kSnapshot;
  e.message.from = e.from;
  e.message.to = e.to;
  e.message.term = Term(5);
  e.message.snapshot.meta.index = LogIndex(1200);
  e.message.snapshot.meta.term = Term(4);
  e.message.snapshot.transfer_id = transfer_id;
  e.message.snapshot.data = std::move(data);
  return e;
}

std::string random_bytes(std::size_t bytes, Rng& rng) {
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(rng.uniform(256));
  return out;
}

// Words and numbers: compresses about 3x.
std::string text_bytes(std::size_t bytes, Rng& rng) {
  static constexpr std::string_view kWords[] = {"alpha", "bravo", "charlie", "delta", "echo",
                                                "foxtrot", "golf", "hotel"};
  std::string out;
  while (out.size() < bytes) {
    out += kWords[rng.uniform(std::size(kWords))];
    out += rng.chance(0.2) ? std::to_string(rng.uniform(100000)) : " ";
  }
  out.resize(bytes);
  return out;
}

std::uint8_t version_of(std::string_view encoded) { return static_cast<std::uint8_t>(encoded[0]); }

struct Encoded {
  ChunkEncoding encoding;
  std::string bytes;
};

// Encodes `e` with `history` and checks that it decodes back to `e`.
Encoded encode_checked(const Envelope& e, History& history,
                       const EnvelopeEncodeOptions& options = {}) {
  Encoded out;
  out.encoding = encode_envelope_with_history(e, out.bytes, options, history);
  const Result<Envelope> decoded = decode_envelope(out.bytes);
  REQUIRE(decoded.is_ok());
  CHECK(*decoded == e);
  CHECK(version_of(out.bytes) == (out.encoding == ChunkEncoding::kCompressed ? 2 : 1));
  return out;
}

// The chunks (0-based) a transfer of `chunks` incompressible chunks tries:
// the first two, then every 16th.
std::vector<std::size_t> expected_tries(std::size_t chunks) {
  std::vector<std::size_t> tries;
  for (std::size_t i = 0; i < chunks; ++i) {
    if (i < History::kFailuresBeforeSkipping ||
        (i + 1 - History::kFailuresBeforeSkipping) % History::kRetryEveryChunks == 0) {
      tries.push_back(i);
    }
  }
  return tries;
}

TEST_CASE("history: incompressible chunks stop being tried after the second, retried every 16th",
          "[transport][compression][history]") {
  Rng rng(test_support::test_seed("incompressible transfer", 61));
  History history;
  std::vector<std::size_t> tried;
  for (std::size_t i = 0; i < 50; ++i) {
    const Envelope e = chunk_envelope(random_bytes(kChunkBytes, rng));
    const Encoded encoded = encode_checked(e, history);
    CHECK(encoded.encoding != ChunkEncoding::kCompressed);
    if (encoded.encoding == ChunkEncoding::kIncompressible) tried.push_back(i);
    // Skipped or tried in vain, the bytes are those of compression off.
    CHECK(encoded.bytes == encode_envelope(e, {.compress_snapshot_chunks = false}));
  }
  CHECK(tried == std::vector<std::size_t>{0, 1, 17, 33, 49});
  CHECK(tried == expected_tries(50));
  const ChunkCompressionCounts counts = history.counts();
  CHECK(counts.attempts == 5);
  CHECK(counts.skipped == 45);
  CHECK(counts.compressed == 0);
}

TEST_CASE("history: data that turns compressible is compressed again from the next retry",
          "[transport][compression][history]") {
  Rng rng(test_support::test_seed("turns compressible", 62));
  History history;
  std::vector<ChunkEncoding> encodings;
  for (std::size_t i = 0; i < 2; ++i) {
    encodings.push_back(encode_checked(chunk_envelope(random_bytes(kChunkBytes, rng)), history)
                            .encoding);
  }
  for (std::size_t i = 2; i < 22; ++i) {
    encodings.push_back(encode_checked(chunk_envelope(text_bytes(kChunkBytes, rng)), history)
                            .encoding);
  }
  CHECK(encodings[0] == ChunkEncoding::kIncompressible);
  CHECK(encodings[1] == ChunkEncoding::kIncompressible);
  // Chunks 2 to 16 would compress, but the transfer is skipping; chunk 17
  // is the retry, and from it on every chunk is tried (and pays).
  for (std::size_t i = 2; i < 17; ++i) {
    INFO("chunk " << i);
    CHECK(encodings[i] == ChunkEncoding::kSkipped);
  }
  for (std::size_t i = 17; i < 22; ++i) {
    INFO("chunk " << i);
    CHECK(encodings[i] == ChunkEncoding::kCompressed);
  }
  CHECK(history.counts().attempts == 2 + 5);
  CHECK(history.counts().compressed == 5);
  CHECK(history.counts().skipped == 15);
}

TEST_CASE("history: compressible chunks are encoded exactly as without a history",
          "[transport][compression][history]") {
  Rng rng(test_support::test_seed("compressible transfer", 63));
  History history;
  for (std::size_t i = 0; i < 20; ++i) {
    const Envelope e = chunk_envelope(text_bytes(kChunkBytes, rng));
    const Encoded encoded = encode_checked(e, history);
    CHECK(encoded.encoding == ChunkEncoding::kCompressed);
    CHECK(encoded.bytes == encode_envelope(e));
  }
  // One chunk in two incompressible: never two failures in a row, so every
  // chunk is still tried.
  for (std::size_t i = 0; i < 20; ++i) {
    const bool random = i % 2 == 0;
    const Envelope e = chunk_envelope(random ? random_bytes(kChunkBytes, rng)
                                             : text_bytes(kChunkBytes, rng));
    const Encoded encoded = encode_checked(e, history);
    CHECK(encoded.encoding ==
          (random ? ChunkEncoding::kIncompressible : ChunkEncoding::kCompressed));
    CHECK(encoded.bytes == encode_envelope(e));
  }
  CHECK(history.counts().attempts == 40);
  CHECK(history.counts().skipped == 0);
}

TEST_CASE("history: transfers are judged apart, and one ends with its last chunk",
          "[transport][compression][history]") {
  Rng rng(test_support::test_seed("two transfers", 64));
  History history;
  // Interleaved: transfer 1 of group 17 is random, transfer 1 of group 18
  // and transfer 2 of group 17 are text.
  for (std::size_t i = 0; i < 6; ++i) {
    const ChunkEncoding random =
        encode_checked(chunk_envelope(random_bytes(kChunkBytes, rng), 1), history).encoding;
    CHECK(random == (i < 2 ? ChunkEncoding::kIncompressible : ChunkEncoding::kSkipped));
    CHECK(encode_checked(chunk_envelope(text_bytes(kChunkBytes, rng), 1, GroupId(18)), history)
              .encoding == ChunkEncoding::kCompressed);
    CHECK(encode_checked(chunk_envelope(text_bytes(kChunkBytes, rng), 2), history).encoding ==
          ChunkEncoding::kCompressed);
  }
  CHECK(history.tracked_transfers() == 3);

  // The last chunk (small, as a stream's last piece usually is) ends the
  // transfer; the same key starts afresh.
  Envelope last = chunk_envelope("the end", 1);
  last.message.snapshot.last = true;
  CHECK(encode_checked(last, history).encoding == ChunkEncoding::kNotTried);
  CHECK(history.tracked_transfers() == 2);
  CHECK(encode_checked(chunk_envelope(random_bytes(kChunkBytes, rng), 1), history).encoding ==
        ChunkEncoding::kIncompressible);

  // A new snapshot under a reused transfer id is another transfer.
  for (int i = 0; i < 2; ++i) {
    (void)encode_checked(chunk_envelope(random_bytes(kChunkBytes, rng), 1), history);
  }
  Envelope next_snapshot = chunk_envelope(random_bytes(kChunkBytes, rng), 1);
  next_snapshot.message.snapshot.meta.index = LogIndex(5000);
  CHECK(encode_checked(next_snapshot, history).encoding == ChunkEncoding::kIncompressible);
}

TEST_CASE("history: other envelopes and chunks outside the bounds leave it alone",
          "[transport][compression][history]") {
  History history;
  Envelope small = chunk_envelope(std::string(kMinCompressedChunkBytes - 1, '\0'));
  CHECK(encode_checked(small, history).encoding == ChunkEncoding::kNotTried);
  Envelope response = chunk_envelope(std::string(kChunkBytes, '\0'));
  response.message.type = MessageType::kSnapshotResponse;
  CHECK(encode_checked(response, history).encoding == ChunkEncoding::kNotTried);
  Envelope request;
  request.kind = EnvelopeKind::kRequest;
  request.payload = std::string(kChunkBytes, '\0');
  CHECK(encode_checked(request, history).encoding == ChunkEncoding::kNotTried);
  CHECK(history.tracked_transfers() == 0);
  CHECK(history.counts().attempts == 0);
  CHECK(history.counts().skipped == 0);
}

TEST_CASE("history: with compression off nothing is tried and every frame is version 1",
          "[transport][compression][history]") {
  Rng rng(test_support::test_seed("compression off", 65));
  History history;
  for (std::size_t i = 0; i < 4; ++i) {
    for (const Envelope& e : {chunk_envelope(text_bytes(kChunkBytes, rng)),
                              chunk_envelope(std::string(kChunkBytes, '\0')),
                              chunk_envelope(random_bytes(kChunkBytes, rng))}) {
      const Encoded encoded = encode_checked(e, history, {.compress_snapshot_chunks = false});
      CHECK(encoded.encoding == ChunkEncoding::kNotTried);
      CHECK(version_of(encoded.bytes) == 1);
      CHECK(encoded.bytes.size() > kChunkBytes);
    }
  }
  CHECK(history.tracked_transfers() == 0);
  CHECK(history.counts().attempts == 0);
}

TEST_CASE("history: at most 64 transfers, the least recently used forgotten first",
          "[transport][compression][history]") {
  History history;
  const auto key = [](std::uint64_t transfer) {
    return SnapshotTransferKey{GroupId(3), transfer, LogIndex(10), Term(2)};
  };
  // Every transfer skipping: two failed tries each.
  const auto fail_twice = [&](std::uint64_t transfer) {
    for (int i = 0; i < 2; ++i) {
      REQUIRE(history.should_try(key(transfer)));
      history.record(key(transfer), false);
    }
  };
  for (std::uint64_t t = 0; t < History::kMaxTrackedTransfers; ++t) fail_twice(t);
  CHECK(history.tracked_transfers() == History::kMaxTrackedTransfers);
  // Transfer 0 is used again, so transfer 1 is now the least recent.
  CHECK_FALSE(history.should_try(key(0)));
  fail_twice(1000);
  CHECK(history.tracked_transfers() == History::kMaxTrackedTransfers);
  CHECK_FALSE(history.should_try(key(0)));     // still remembered
  CHECK_FALSE(history.should_try(key(2)));     // still remembered
  CHECK_FALSE(history.should_try(key(1000)));  // the newcomer
  CHECK(history.should_try(key(1)));           // forgotten: tried afresh
  CHECK(history.tracked_transfers() == History::kMaxTrackedTransfers);
}

TEST_CASE("history: a retry that fails keeps skipping; one that pays stops it",
          "[transport][compression][history]") {
  History history;
  const SnapshotTransferKey transfer{GroupId(1), 1, LogIndex(1), Term(1)};
  std::string decisions;
  const auto step = [&](bool compresses) {
    const bool tried = history.should_try(transfer);
    decisions += tried ? (compresses ? 'C' : 'F') : '.';
    if (tried) history.record(transfer, compresses);
  };
  for (int i = 0; i < 34; ++i) step(false);
  for (int i = 0; i < 18; ++i) step(true);
  CHECK(decisions ==
        "FF" + std::string(15, '.') + "F" + std::string(15, '.') + "F" +  // 34 failing chunks
            std::string(15, '.') + "CCC");                               // then compressible
}

}  // namespace
}  // namespace nodenomad
