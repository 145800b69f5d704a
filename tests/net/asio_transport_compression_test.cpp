// AsioTransport and snapshot chunk compression: the compress_snapshot_chunks
// option reaches the codec, and each peer link stops trying zstd on a
// transfer whose chunks do not compress. Observed through the transport's
// counters and the bytes on the wire; the io_context runs on the test
// thread (run_until), nothing is timed.
#include "net/transport_test_support.hpp"
#include "nodenomad/rng.hpp"
#include "support/test_seed.hpp"

namespace nodenomad::net {
namespace {

using namespace test;

constexpr std::size_t kChunkBytes = 64u << 10;

Envelope snapshot_chunk(const NodeId& from, const NodeId& to, std::uint64_t offset,
                        std::string data) {
  Envelope e;
  e.from = from;
  e.to = to;
  e.group = GroupId(7);
  e.kind = EnvelopeKind::kRaft;
  e.message.type = MessageType::kSnapshot;
  e.message.from = from;
  e.message.to = to;
  e.message.term = Term(3);
  e.message.snapshot.meta.index = LogIndex(500);
  e.message.snapshot.meta.term = Term(2);
  e.message.snapshot.transfer_id = 4;
  e.message.snapshot.offset = offset;
  e.message.snapshot.data = std::move(data);
  return e;
}

// Letters from a small alphabet with spaces: compresses more than 2x.
std::string text_bytes(std::size_t bytes, Rng& rng) {
  std::string out(bytes, ' ');
  for (char& c : out) c = rng.chance(0.15) ? ' ' : static_cast<char>('a' + rng.uniform(6));
  return out;
}

std::string random_bytes(std::size_t bytes, Rng& rng) {
  std::string out(bytes, '\0');
  for (char& c : out) c = static_cast<char>(rng.uniform(256));
  return out;
}

// Sends `chunks` from a to b and waits until b has them all and a counted
// them sent.
void send_all(asio::io_context& io, TestNode& a, TestNode& b, const std::vector<Envelope>& chunks) {
  for (const Envelope& e : chunks) a.transport.send(e);
  run_until(io, [&] {
    return b.recorder.count() == chunks.size() &&
           a.transport.stats().envelopes_sent == chunks.size();
  }, "every snapshot chunk sent by node-a and received at node-b");
  CHECK(b.recorder.envelopes() == chunks);
}

TEST_CASE("AsioTransport compresses snapshot chunks unless compress_snapshot_chunks is off",
          "[net][compression]") {
  LogCapture logs;
  asio::io_context io;
  Rng rng(test_support::test_seed("transport compression option", 71));
  AsioTransportOptions a_options = options_for("node-a");
  bool compress = true;
  SECTION("on (the default)") {}
  SECTION("off") {
    a_options.compress_snapshot_chunks = false;
    compress = false;
  }
  auto a = start_node(io, a_options);
  auto b = start_node(io, options_for("node-b"));
  connect_both(*a, *b);

  std::vector<Envelope> chunks;
  for (std::uint64_t i = 0; i < 3; ++i) {
    chunks.push_back(snapshot_chunk(a->id, b->id, i * kChunkBytes, text_bytes(kChunkBytes, rng)));
  }
  send_all(io, *a, *b, chunks);

  const AsioTransportStats stats = a->transport.stats();
  CHECK(stats.chunks_compressed == (compress ? 3 : 0));
  CHECK(stats.chunks_incompressible == 0);
  CHECK(stats.chunks_not_tried == 0);
  if (compress) {
    CHECK(stats.bytes_sent < 3 * kChunkBytes / 2);
  } else {
    // Format 1: the chunk data travels as it is (a node built before
    // compression reads it), and node-b decoded it above.
    CHECK(stats.bytes_sent > 3 * kChunkBytes);
  }
  CHECK(b->transport.stats().bad_frames == 0);
}

TEST_CASE("AsioTransport stops trying zstd on a transfer whose chunks do not compress",
          "[net][compression]") {
  LogCapture logs;
  asio::io_context io;
  Rng rng(test_support::test_seed("transport adaptive compression", 72));
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  connect_both(*a, *b);

  // 20 random chunks, then 20 compressible ones of the same transfer.
  std::vector<Envelope> chunks;
  for (std::uint64_t i = 0; i < 40; ++i) {
    chunks.push_back(snapshot_chunk(
        a->id, b->id, i * kChunkBytes,
        i < 20 ? random_bytes(kChunkBytes, rng) : text_bytes(kChunkBytes, rng)));
  }
  chunks.back().message.snapshot.last = true;
  send_all(io, *a, *b, chunks);

  // Tried: chunks 0 and 1 (in vain), 17 (in vain), 33 (the first retry on
  // compressible data) and every one after it. Not tried: 2-16, 18-32.
  const AsioTransportStats stats = a->transport.stats();
  CHECK(stats.chunks_incompressible == 3);
  CHECK(stats.chunks_not_tried == 30);
  CHECK(stats.chunks_compressed == 7);
  CHECK(b->transport.stats().bad_frames == 0);
}

}  // namespace
}  // namespace nodenomad::net
