// AsioTransport: the TCP Transport on Boost.Asio (docs/transport.md).
//
// What it does: one listening port per node, shared with the HTTP API (a
// connection whose first byte is not NUL is handed to the foreign
// connection handler); one outgoing connection per peer, dialed on the first
// send and redialed with exponential backoff and jitter; length-prefixed,
// checksummed frames that carry every envelope queued for a peer at the time
// of a write; a handshake that checks protocol version, cluster id and node
// ids. Inbound connections only receive, outbound ones only send, so each
// pair of nodes has two connections, one per direction.
//
// Bounds: per-peer send queues (envelopes and bytes; a full queue drops the
// new envelope and counts it), max_frame_bytes on what a peer may send us
// (checked on the header, before anything is allocated), handshake and idle
// timeouts, and a cap on concurrent inbound connections.
//
// Threads: everything runs on the io_context given to the constructor, on a
// strand of it, so the io_context may be run by one thread (the node's
// runtime) or several. The handler's callbacks run on that strand.
//   - send(), set_peer(), remove_peer() and stats() may be called from any
//     thread. send() encodes on the calling thread and never blocks on I/O.
//   - start() is called once, from any thread, before or while the
//     io_context runs.
//   - stop() may be called from any thread, at any time, whether or not a
//     thread is running the io_context, and also from inside a callback. It
//     is idempotent and synchronous: when it returns, the listening socket
//     and every connection are closed (the port can be bound again), and no
//     callback is running or will run (a callback in progress on another
//     thread is waited for, so do not call stop() while holding a lock the
//     callback needs). Handlers still queued in the io_context do nothing
//     when they run.
//
// Ownership and lifetime: the io_context must outlive the transport; the
// handler given to start() must stay valid until stop() has returned. The
// destructor calls stop().
//
// Errors: no exception leaves this class; Asio is used through its
// error_code overloads. Failures of peers are logged once per peer and
// reason (nodenomad/logging.hpp, component "transport") and counted in
// stats().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

// GCC 12 reports "potential null pointer dereference" inside Asio's scheduler
// and strand once they are inlined (false positives in Boost); the warning
// stays on for NodeNomad's own code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#pragma GCC diagnostic pop

#include "nodenomad/status.hpp"
#include "nodenomad/transport.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::net {

namespace detail {
class TransportCore;  // src/net/transport_core.hpp
}  // namespace detail

struct AsioTransportOptions {
  NodeId self;
  // Peers of another cluster are refused at the handshake.
  std::string cluster_id;
  // "host:port" to listen on; port 0 picks a free port (see local_port()).
  std::string listen_address;

  // Largest frame payload a peer may send us, and the most this node puts in
  // one frame when it coalesces. At most 4 GiB - 1 (a u32 on the wire); every
  // node of a cluster should use the same value.
  std::uint32_t max_frame_bytes = 64u << 20;
  // Per-peer send queue; an envelope that does not fit is dropped.
  std::uint64_t max_queue_bytes_per_peer = 64u << 20;
  std::uint64_t max_queue_envelopes_per_peer = 100'000;

  // Redial delay after a failed or lost connection: starts at min, doubles
  // per failure up to max, resets after a handshake succeeds. Each delay is
  // drawn uniformly from [delay / 2, delay] so peers do not redial in step.
  std::uint32_t reconnect_backoff_min_ms = 50;
  std::uint32_t reconnect_backoff_max_ms = 5'000;
  std::uint64_t backoff_seed = 1;

  // Dial (resolve, connect) plus handshake; and an accepted connection's
  // time to present its hello.
  std::uint32_t handshake_timeout_ms = 5'000;
  // An inbound connection with no frame for this long is closed; an outbound
  // write that takes this long closes its connection.
  std::uint32_t idle_timeout_ms = 15'000;
  // An idle outbound connection sends an empty frame this often, so the
  // peer's idle timeout only fires for a dead peer. Below idle_timeout_ms / 2.
  std::uint32_t keepalive_interval_ms = 1'000;

  // Accepted connections at once (peers and not-yet-classified ones; a
  // connection handed to the foreign handler no longer counts).
  std::uint32_t max_inbound_connections = 1'024;

  // zstd on snapshot chunks (EnvelopeEncodeOptions::compress_snapshot_chunks,
  // docs/transport.md "Snapshot chunk compression"). Each peer link keeps a
  // history per snapshot transfer: after two chunks in a row that did not
  // save 1/8, the transfer's chunks go out raw untried except every 16th.
  // Off: every envelope is written in format version 1, which a node built
  // before compression reads (a mixed-version cluster needs it off until
  // every node reads version 2); also worth it on links faster than zstd
  // (about 300 MB/s of text per sending thread).
  bool compress_snapshot_chunks = true;
};

// Counters since start(), for metrics. Each is read atomically on its own;
// together they are not one snapshot.
struct AsioTransportStats {
  std::uint64_t frames_sent = 0;         // data frames, keepalives not included
  std::uint64_t envelopes_sent = 0;
  std::uint64_t bytes_sent = 0;          // every byte written after the handshake
  std::uint64_t keepalives_sent = 0;
  std::uint64_t frames_received = 0;     // keepalives included
  std::uint64_t envelopes_received = 0;
  std::uint64_t bytes_received = 0;      // every byte read after the handshake
  std::uint64_t envelopes_dropped_queue_full = 0;
  std::uint64_t envelopes_dropped_unknown_peer = 0;
  std::uint64_t envelopes_dropped_too_large = 0;  // above max_frame_bytes on its own
  std::uint64_t envelopes_dropped_not_running = 0;  // before start() or after stop()
  std::uint64_t connects = 0;            // outbound handshakes that succeeded
  std::uint64_t connect_failures = 0;    // outbound attempts that did not
  std::uint64_t disconnects = 0;         // established outbound connections lost
  std::uint64_t inbound_connections = 0;  // accepted peers that passed the handshake
  std::uint64_t handshake_rejections = 0;  // refused by us, refused us, or not our protocol
  std::uint64_t handshake_timeouts = 0;  // accepted connections silent past the timeout
  std::uint64_t bad_frames = 0;          // checksum, malformed or too large: closed
  std::uint64_t oversized_frames = 0;    // the part of bad_frames above max_frame_bytes
  std::uint64_t foreign_connections = 0;  // handed to the foreign handler (or closed)
  std::uint64_t inbound_refused_at_capacity = 0;
  // Snapshot chunks zstd is tried on (compress_snapshot_chunks), by outcome.
  std::uint64_t chunks_compressed = 0;      // saved at least 1/8: sent compressed
  std::uint64_t chunks_incompressible = 0;  // tried in vain: sent raw
  std::uint64_t chunks_not_tried = 0;       // sent raw untried: their transfer did not compress
};

class AsioTransport final : public Transport {
 public:
  // Receives an accepted connection whose first byte is not NUL (an HTTP
  // client), with the bytes already read from it (at least one). Runs on the
  // transport's strand; it must take the socket and return promptly.
  using ForeignConnectionHandler =
      std::function<void(boost::asio::ip::tcp::socket socket, std::string already_read)>;

  AsioTransport(boost::asio::io_context& io, AsioTransportOptions options);
  ~AsioTransport() override;
  AsioTransport(const AsioTransport&) = delete;
  AsioTransport& operator=(const AsioTransport&) = delete;

  // Precondition: before start(). Without a handler such connections are closed.
  void set_foreign_connection_handler(ForeignConnectionHandler handler);

  // Validates the options (kInvalidArgument naming the option), binds the
  // listen address (kIOError "listen on 127.0.0.1:3000: Address already in
  // use") and starts accepting. Precondition: called once.
  Status start(TransportHandler& handler) override;
  void stop() override;
  void send(Envelope envelope) override;
  // `address` is "host:port"; a changed address redials.
  void set_peer(const NodeId& peer, std::string address) override;
  void remove_peer(const NodeId& peer) override;

  // The bound port (the ephemeral one for port 0); 0 before start().
  std::uint16_t local_port() const;
  AsioTransportStats stats() const;

 private:
  // Shared with the connections' pending handlers, which may outlive this
  // object until the io_context runs them.
  std::shared_ptr<detail::TransportCore> core_;
};

}  // namespace nodenomad::net
