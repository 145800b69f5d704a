// The inside of AsioTransport: TransportCore (listener, peers, callbacks),
// PeerLink (one outgoing connection) and InboundSession (one accepted
// connection). Only asio_transport.cpp and peer_link.cpp include this, so
// Boost.Asio's templates are compiled in two translation units.
//
// Threads: every member marked "strand" is touched only by handlers that run
// on TransportCore's strand *and* hold TransportCore::io_mu_ (on_strand() and
// post() wrap every handler so). The mutex is what lets stop() close all
// sockets synchronously from any thread, whether or not a thread is running
// the io_context; it is uncontended except during stop(), and it is released
// around every call into the host (call_host()). Completion handlers capture
// a shared_ptr to their object and a generation number, so a completion that
// arrives after its connection was closed or replaced is ignored.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

// See nodenomad/net/asio_transport.hpp: GCC 12 false positives inside Asio.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#pragma GCC diagnostic pop

#include "net/peer_frame.hpp"
#include "net/transport_support.hpp"
#include "nodenomad/net/asio_transport.hpp"
#include "nodenomad/rng.hpp"
#include "transport/chunk_compression_history.hpp"

namespace nodenomad::net::detail {

using tcp = boost::asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using SteadyClock = std::chrono::steady_clock;

// The options' *_ms counts as a duration.
inline std::chrono::milliseconds ms(std::uint64_t count) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(count));
}

using Counter = std::atomic<std::uint64_t>;
inline void bump(Counter& counter, std::uint64_t by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

// The live counters behind AsioTransportStats (same names).
struct Counters {
  Counter frames_sent{0}, envelopes_sent{0}, bytes_sent{0}, keepalives_sent{0};
  Counter frames_received{0}, envelopes_received{0}, bytes_received{0};
  Counter envelopes_dropped_queue_full{0}, envelopes_dropped_unknown_peer{0};
  Counter envelopes_dropped_too_large{0}, envelopes_dropped_not_running{0};
  Counter connects{0}, connect_failures{0}, disconnects{0}, inbound_connections{0};
  Counter handshake_rejections{0}, handshake_timeouts{0}, bad_frames{0}, oversized_frames{0};
  Counter foreign_connections{0}, inbound_refused_at_capacity{0};
  Counter chunks_compressed{0}, chunks_incompressible{0}, chunks_not_tried{0};

  AsioTransportStats snapshot() const;
};

// The part of a PeerLink that send() touches from any thread.
class Outbox {
 public:
  enum class Push {
    kQueued,       // a flush is already on its way
    kQueuedFirst,  // the caller must post a flush to the link
    kFull,         // dropped: the bound is reached
    kClosed,       // dropped: the peer was removed or the transport stopped
  };
  Push push(std::string record, std::uint64_t max_envelopes, std::uint64_t max_bytes);
  // Moves queued records to `batch` while their framed size fits
  // `max_payload_bytes` (at least one when any is queued); the next push
  // after it posts a flush again.
  void take(std::vector<std::string>& batch, std::uint64_t max_payload_bytes);
  bool empty() const;
  void close();

 private:
  mutable std::mutex mu_;
  std::deque<std::string> records_;
  std::uint64_t bytes_ = 0;
  // Set by the push that made the outbox non-empty, cleared by take(): while
  // set, the link is bound to drain the outbox (a flush is posted, or it is
  // connecting, backing off or writing), so later pushes need not post.
  bool flush_pending_ = false;
  bool closed_ = false;
};

class TransportCore;

// One peer's outgoing connection: dials lazily, sends frames, redials with
// backoff. Strand only, except outbox() and the address.
class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  PeerLink(std::shared_ptr<TransportCore> core, NodeId peer, std::string address);

  Outbox& outbox() { return outbox_; }
  // Any thread: what this peer's snapshot transfers did when compressed.
  ChunkCompressionHistory& chunk_history() { return chunk_history_; }
  // Any thread; answers whether the address changed.
  bool set_address(std::string address);

  // Strand: there is something to send.
  void flush();
  // Strand: the address changed; drop the connection and dial the new one.
  void redial();
  // Strand: for good (peer removed, transport stopped).
  void close();

 private:
  enum class State { kIdle, kConnecting, kConnected, kBackoff, kClosed };

  std::string address() const;
  void start_connect();
  void connect_to(std::uint64_t generation, std::vector<tcp::endpoint> endpoints);
  void on_connected(std::uint64_t generation, const ErrorCode& error);
  void read_reply(std::uint64_t generation);
  void on_reply_bytes(std::uint64_t generation, const ErrorCode& error, std::size_t bytes);
  void on_reply(const Hello& reply);
  void on_established();
  void watch_for_close(std::uint64_t generation);
  void write_next();
  void write_keepalive();
  void start_write(bool keepalive, std::size_t envelopes);
  void on_written(const ErrorCode& error, std::size_t bytes, bool keepalive,
                  std::size_t envelopes);
  void arm_timer(std::uint64_t delay_ms, void (PeerLink::*on_fire)());
  void on_handshake_deadline();
  void on_keepalive_tick();
  void on_backoff_done();
  void fail(std::string_view reason, const std::string& message);
  void drop_connection();

  std::shared_ptr<TransportCore> core_;
  const NodeId peer_;
  Outbox outbox_;
  ChunkCompressionHistory chunk_history_;  // locks itself
  mutable std::mutex address_mu_;
  std::string address_;  // guarded by address_mu_

  // Strand.
  State state_ = State::kIdle;
  std::uint64_t generation_ = 0;        // bumped whenever the socket is dropped
  std::uint64_t timer_generation_ = 0;  // bumped whenever the timer is re-armed
  tcp::socket socket_;
  tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  std::string dialed_address_;  // for log lines of this attempt
  std::string hello_;
  std::optional<HelloReader> reply_reader_;
  std::array<char, 512> reply_buffer_{};
  char probe_byte_ = 0;
  // The envelopes of the frame being written: its large ones are written
  // from here (GatheredFrame), so they live until the write completes.
  std::vector<std::string> batch_;
  GatheredFrame frame_;
  std::vector<boost::asio::const_buffer> write_buffers_;
  bool write_in_flight_ = false;
  SteadyClock::time_point write_started_;
  SteadyClock::time_point last_write_done_;
  std::uint64_t backoff_ms_ = 0;
  bool unreachable_reported_ = false;  // in the current failure episode
};

// One accepted connection: tells a peer from a foreign client, checks the
// peer's hello, answers it, then reads frames until the peer goes away.
// Strand only.
class InboundSession : public std::enable_shared_from_this<InboundSession> {
 public:
  InboundSession(std::shared_ptr<TransportCore> core, tcp::socket socket, std::uint64_t id);
  void start();
  void close();

 private:
  enum class Phase { kHello, kRefusing, kFrames, kClosed };

  void read_more();
  void on_read(const ErrorCode& error, std::size_t bytes);
  void on_hello_bytes(std::string_view bytes);
  void on_hello(const Hello& hello);
  void refuse(std::string_view reason, const std::string& why, std::uint8_t version);
  void accept_peer(const Hello& hello);
  void on_frame_bytes(std::string_view bytes);
  bool handle_frame(const FrameStep& step);
  void arm_watchdog(SteadyClock::time_point at);
  void on_watchdog();
  void close_for(std::string_view reason, const std::string& message);

  std::shared_ptr<TransportCore> core_;
  tcp::socket socket_;
  boost::asio::steady_timer watchdog_;
  const std::uint64_t id_;
  std::string remote_ip_;  // log subject until the peer names itself
  Phase phase_ = Phase::kHello;
  HelloReader hello_reader_;
  std::optional<FrameDecoder> frames_;
  NodeId peer_;
  std::string reply_;
  std::vector<char> read_buffer_;
  std::vector<Envelope> envelopes_;
  SteadyClock::time_point last_read_;
};

class TransportCore : public std::enable_shared_from_this<TransportCore> {
 public:
  TransportCore(boost::asio::io_context& io, AsioTransportOptions options);

  // The public API (see asio_transport.hpp for the contracts).
  void set_foreign_handler(AsioTransport::ForeignConnectionHandler handler);
  Status start(TransportHandler& handler);
  void stop();
  void send(Envelope envelope);
  void set_peer(const NodeId& peer, std::string address);
  void remove_peer(const NodeId& peer);
  std::uint16_t local_port() const { return local_port_.load(); }
  AsioTransportStats stats() const { return counters_.snapshot(); }

  // For PeerLink and InboundSession.
  boost::asio::io_context& io() { return io_; }
  const AsioTransportOptions& options() const { return options_; }
  Counters& counters() { return counters_; }  // any thread

  // Wraps a completion handler to run on the strand under io_mu_, and not at
  // all once the transport is closed. The handler must keep this core alive
  // (it captures a PeerLink, an InboundSession or the core itself).
  template <typename Handler>
  auto on_strand(Handler&& handler) {
    return boost::asio::bind_executor(
        strand_, Guarded<std::decay_t<Handler>>{this, std::forward<Handler>(handler)});
  }
  template <typename Task>
  void post(Task&& task) {
    boost::asio::post(strand_, Guarded<std::decay_t<Task>>{this, std::forward<Task>(task)});
  }
  void log_once(const std::string& subject, std::string_view reason, std::string_view message) {
    log_once_.warn(subject, reason, message);
  }
  void forget_logs(const std::string& subject) { log_once_.forget(subject); }
  std::uint64_t jittered_ms(std::uint64_t delay_ms);  // uniform in [delay / 2, delay]
  void report_unreachable(const NodeId& peer);
  // Hands the envelopes to the handler in order; false once stopped.
  bool deliver(std::vector<Envelope>& envelopes);
  void hand_to_foreign(tcp::socket socket, std::string already_read, const std::string& remote);
  void forget_inbound(std::uint64_t id) { inbound_.erase(id); }

 private:
  enum class Phase : int { kNew, kRunning, kStopped };

  template <typename Handler>
  struct Guarded {
    TransportCore* core;
    Handler handler;
    template <typename... Args>
    void operator()(Args&&... args) {
      std::unique_lock lock(core->io_mu_);
      if (core->closed_) return;
      core->handler_lock_ = &lock;
      handler(std::forward<Args>(args)...);
      core->handler_lock_ = nullptr;
    }
  };

  // Calls into the host with io_mu_ released (the host may call stop(),
  // which takes it), through the gate. Only from inside a Guarded handler.
  template <typename Call>
  bool call_host(Call&& call) {
    NN_ASSERT(handler_lock_ != nullptr, "call_host() outside a transport handler");
    std::unique_lock<std::mutex>& lock = *handler_lock_;
    lock.unlock();
    const bool ran = gate_.run(std::forward<Call>(call));
    lock.lock();
    return ran;
  }

  std::shared_ptr<PeerLink> find_link(const NodeId& peer);
  void count_chunk(ChunkEncoding encoding);
  Status validate_options() const;
  Status open_acceptor();
  void accept_next();
  void on_accept(const ErrorCode& error, tcp::socket socket);
  void close_all();

  boost::asio::io_context& io_;
  Strand strand_;
  const AsioTransportOptions options_;
  const EnvelopeEncodeOptions encode_options_;
  Counters counters_;
  CallbackGate gate_;
  std::atomic<Phase> phase_{Phase::kNew};
  std::atomic<std::uint16_t> local_port_{0};
  AsioTransport::ForeignConnectionHandler foreign_handler_;  // set before start()

  // Held by every handler of this transport while it runs (see the top).
  std::mutex io_mu_;
  std::unique_lock<std::mutex>* handler_lock_ = nullptr;  // the running handler's

  std::mutex peers_mu_;
  std::unordered_map<NodeId, std::shared_ptr<PeerLink>> peers_;  // guarded by peers_mu_

  // Strand (and io_mu_).
  tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_timer_;
  bool closed_ = false;
  LogOnce log_once_;
  Rng backoff_rng_;
  std::map<std::uint64_t, std::weak_ptr<InboundSession>> inbound_;
  std::uint64_t next_inbound_id_ = 0;
};

}  // namespace nodenomad::net::detail
