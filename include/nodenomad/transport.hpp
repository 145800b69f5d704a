// Transport: how a Node's messages reach other nodes. Hosts may bring their
// own (examples/custom_transport.cpp); the library ships AsioTransport (TCP,
// nodenomad/net/asio_transport.hpp) and InMemoryTransport (one process,
// nodenomad/in_memory_transport.hpp).
//
// Contract:
//   - Delivery is best effort: an envelope may be dropped, delayed,
//     duplicated or reordered. Raft and the node's request layer tolerate
//     all of it; a transport never needs to retry.
//   - send() never blocks and never fails loudly: a full queue or an
//     unknown peer drops the envelope (and may count it).
//   - Envelopes sent back to back to one peer may be coalesced into one
//     frame; they arrive as separate envelopes.
//   - The handler's on_envelope() runs on a transport thread and must not
//     block; a Node queues the envelope onto its event loop and returns.
//
// Thread safety: send(), set_peer() and remove_peer() may be called from any
// thread, concurrently. start() and stop() are called once each, by the
// owner. After stop() returns, no handler callback runs any more.
//
// Ownership: the handler is not owned; it must outlive the transport's
// started period (start() until stop() returned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "nodenomad/raft/message.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

enum class EnvelopeKind : std::uint8_t {
  kRaft = 1,      // `message` for the Raft group `group`
  kRequest = 2,   // `payload`: a node-to-node request (a forwarded client call)
  kResponse = 3,  // `payload`: the answer to the kRequest with `request_id`
};

struct Envelope {
  NodeId from;
  NodeId to;
  GroupId group;  // kRaft: the Raft group; otherwise the shard group asked about (or 0)
  EnvelopeKind kind = EnvelopeKind::kRaft;
  Message message;               // kRaft only
  std::uint64_t request_id = 0;  // kRequest, kResponse: pairs a response with its request
  std::string payload;           // kRequest, kResponse: opaque to transports

  bool operator==(const Envelope&) const = default;
};

// Receives what a transport delivers.
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // One envelope from a peer. Runs on a transport thread; must not block.
  virtual void on_envelope(Envelope envelope) = 0;
  // The connection to `peer` was lost or could not be made (Raft then probes
  // it gently instead of streaming). Optional.
  virtual void on_peer_unreachable(const NodeId& /*peer*/) {}
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Starts delivering to `handler` (listening, connecting). kIOError names
  // the address for a port that cannot be bound.
  virtual Status start(TransportHandler& handler) = 0;
  // Stops sending and delivering; pending envelopes are dropped. Idempotent.
  virtual void stop() = 0;
  // Queues `envelope` for envelope.to; best effort (see the contract above).
  virtual void send(Envelope envelope) = 0;
  // Adds a peer or changes its address ("host:port" for TCP; whatever the
  // transport understands otherwise).
  virtual void set_peer(const NodeId& peer, std::string address) = 0;
  virtual void remove_peer(const NodeId& peer) = 0;
};

// The binary encoding of an Envelope, for transports that carry bytes.
//
// Layout (integers are unsigned LEB128 varints unless marked u8; a string is
// a varint length followed by its bytes):
//
//   Version 1: every envelope except a compressed snapshot chunk.
//     u8 version (= 1) | u8 kind | from | to | group
//     kind == kRaft:               the message (nodenomad/raft/message_codec.hpp),
//                                  to the end of the bytes
//     kind == kRequest/kResponse:  request_id | payload
//
//   Version 2: a kRaft kSnapshot message whose chunk data is compressed.
//     u8 version (= 2) | u8 kind (= 1, kRaft) | from | to | group |
//     u8 compression (= 1, zstd) | raw_bytes | padding | the message
//     The message's chunk data is one zstd frame that declares raw_bytes
//     in its header, ends with a checksum of its content, and decompresses
//     to exactly raw_bytes; padding is a string of zero bytes that keeps
//     raw_bytes <= kMaxChunkExpansion x (frame + padding bytes), so no chunk
//     decodes to more than 16 times the bytes that carried it.
//
// The encoder writes version 1 whenever it does not compress, so a node
// built before version 2 still reads everything else.
//
// decode_envelope() reads untrusted bytes: every length is checked against
// what remains before anything is allocated; a compressed chunk's raw_bytes
// against kMaxSnapshotChunkBytes and the expansion bound before its buffer is
// allocated, and zstd writes into that buffer only. Anything malformed, a
// zstd frame that is damaged or declares or produces another size than
// raw_bytes, or bytes left over, answer kCorruption naming the field.
//
// Thread safety: free functions over values; safe from any thread. Each
// thread that compresses or decompresses keeps a zstd context until it
// exits (0.6 MB to compress at level 1, 0.1 MB to decompress).
// Cost: compressing takes the calling thread 1-3.5 ms per MiB of chunk data
// (docs/transport.md, "Snapshot chunk compression").
inline constexpr std::uint8_t kEnvelopeFormatVersion = 2;  // the newest; 1 and 2 are read
inline constexpr std::uint8_t kEnvelopeFormatVersionUncompressed = 1;

// Chunk data below this (a snapshot's last piece, a tiny state) is never
// compressed: too few bytes to be worth a zstd call.
inline constexpr std::size_t kMinCompressedChunkBytes = 4u << 10;
// The most chunk data a compressed envelope may declare: the largest
// MIGRATION_CHUNK_SIZE (NodeOptions::migration_chunk_bytes). A larger chunk
// travels uncompressed.
inline constexpr std::uint64_t kMaxSnapshotChunkBytes = 32u << 20;
// A compressed chunk carries at least 1/kMaxChunkExpansion of its raw size
// on the wire (padded if zstd did better).
inline constexpr std::uint64_t kMaxChunkExpansion = 16;

struct EnvelopeEncodeOptions {
  // Compress the data of a kSnapshot chunk of kMinCompressedChunkBytes or
  // more with zstd, and send the compressed form when it saves at least
  // 1/8 of the bytes. Off: every envelope is written in version 1.
  bool compress_snapshot_chunks = true;
  // The zstd level: 1 is the measured choice (docs/benchmarks.md,
  // "codec_bench: snapshot chunk compression"). Negative levels are 7-13%
  // faster on text but write 15-28% more, and skip entropy coding. Within
  // [ZSTD_minCLevel(), ZSTD_maxCLevel()] (asserted).
  int zstd_level = 1;
};

void encode_envelope_to(const Envelope& envelope, std::string& out,
                        const EnvelopeEncodeOptions& options = {});
std::string encode_envelope(const Envelope& envelope, const EnvelopeEncodeOptions& options = {});
Result<Envelope> decode_envelope(std::string_view bytes);
// The same, with a raft message's entries slices of `owner` (which `bytes`
// lies within), as decode_message(bytes, owner).
Result<Envelope> decode_envelope(std::string_view bytes,
                                 const std::shared_ptr<const std::string>& owner);

}  // namespace nodenomad
