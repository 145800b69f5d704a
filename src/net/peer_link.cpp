// PeerLink: one peer's outgoing connection, and the Outbox that send() fills
// from any thread (declared in transport_core.hpp).
//
// A link's life: kIdle until something is queued; kConnecting (resolve,
// connect, hello, welcome) bounded by handshake_timeout_ms; kConnected while
// frames go out; on any failure kBackoff for a jittered, doubling delay, then
// back to kConnecting if anything is queued (else kIdle). kClosed is final.
#include <algorithm>

// See nodenomad/net/asio_transport.hpp: GCC 12 false positives inside Asio.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#pragma GCC diagnostic pop
#include <fmt/format.h>

#include "net/transport_core.hpp"

namespace nodenomad::net::detail {
namespace {

// A write buffer grown past this by a large frame is released afterwards,
// so an idle link keeps little memory.
constexpr std::size_t kRetainedWriteBufferBytes = 1 << 20;

}  // namespace

// ---- Outbox -------------------------------------------------------------------

Outbox::Push Outbox::push(std::string record, std::uint64_t max_envelopes,
                          std::uint64_t max_bytes) {
  std::lock_guard lock(mu_);
  if (closed_) return Push::kClosed;
  // The new envelope is the one dropped: Raft resends what matters, and the
  // queued ones keep their order.
  if (records_.size() >= max_envelopes || bytes_ + record.size() > max_bytes) return Push::kFull;
  bytes_ += record.size();
  records_.push_back(std::move(record));
  if (flush_pending_) return Push::kQueued;
  flush_pending_ = true;
  return Push::kQueuedFirst;
}

void Outbox::take(std::vector<std::string>& batch, std::uint64_t max_payload_bytes) {
  std::lock_guard lock(mu_);
  std::uint64_t payload_bytes = 0;
  while (!records_.empty()) {
    const std::uint64_t next = record_bytes(records_.front().size());
    if (!batch.empty() && payload_bytes + next > max_payload_bytes) break;
    payload_bytes += next;
    bytes_ -= records_.front().size();
    batch.push_back(std::move(records_.front()));
    records_.pop_front();
  }
  // Records left over go out when this batch's write completes.
  flush_pending_ = !records_.empty();
}

bool Outbox::empty() const {
  std::lock_guard lock(mu_);
  return records_.empty();
}

void Outbox::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  records_.clear();
  bytes_ = 0;
}

// ---- PeerLink -------------------------------------------------------------------

PeerLink::PeerLink(std::shared_ptr<TransportCore> core, NodeId peer, std::string address)
    : core_(std::move(core)),
      peer_(std::move(peer)),
      address_(std::move(address)),
      socket_(core_->io()),
      resolver_(core_->io()),
      timer_(core_->io()),
      backoff_ms_(core_->options().reconnect_backoff_min_ms) {}

bool PeerLink::set_address(std::string address) {
  std::lock_guard lock(address_mu_);
  if (address == address_) return false;
  address_ = std::move(address);
  return true;
}

std::string PeerLink::address() const {
  std::lock_guard lock(address_mu_);
  return address_;
}

void PeerLink::flush() {
  switch (state_) {
    case State::kIdle:
      if (!outbox_.empty()) start_connect();
      return;
    case State::kConnected: write_next(); return;
    case State::kConnecting:
    case State::kBackoff:
    case State::kClosed: return;  // the outbox waits for the connection, or is gone
  }
}

void PeerLink::redial() {
  if (state_ != State::kConnecting && state_ != State::kConnected) return;
  drop_connection();
  ++timer_generation_;
  timer_.cancel();
  state_ = State::kIdle;
  if (!outbox_.empty()) start_connect();
}

void PeerLink::close() {
  state_ = State::kClosed;
  drop_connection();
  ++timer_generation_;
  timer_.cancel();
  outbox_.close();
}

void PeerLink::drop_connection() {
  ++generation_;
  write_in_flight_ = false;
  reply_reader_.reset();
  resolver_.cancel();
  ErrorCode ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void PeerLink::start_connect() {
  dialed_address_ = address();
  state_ = State::kConnecting;
  const std::uint64_t generation = ++generation_;
  arm_timer(core_->options().handshake_timeout_ms, &PeerLink::on_handshake_deadline);
  const std::optional<HostPort> host_port = parse_host_port(dialed_address_);
  if (!host_port) {
    fail("address", fmt::format("peer {} has the address '{}', which is not host:port",
                                peer_.str(), dialed_address_));
    return;
  }
  ErrorCode error;
  const boost::asio::ip::address ip = boost::asio::ip::make_address(host_port->host, error);
  if (!error) {
    connect_to(generation, {tcp::endpoint(ip, host_port->port)});
    return;
  }
  // Only names (docker-compose service names) go through the resolver, which
  // keeps Asio's resolver thread out of the common case of IP addresses.
  resolver_.async_resolve(
      host_port->host, std::to_string(host_port->port),
      core_->on_strand([self = shared_from_this(), generation](
                           const ErrorCode& e, const tcp::resolver::results_type& results) {
        if (generation != self->generation_) return;
        if (e) {
          self->fail("resolve", fmt::format("cannot resolve peer {} at {}: {}", self->peer_.str(),
                                            self->dialed_address_, e.message()));
          return;
        }
        std::vector<tcp::endpoint> endpoints;
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
        self->connect_to(generation, std::move(endpoints));
      }));
}

void PeerLink::connect_to(std::uint64_t generation, std::vector<tcp::endpoint> endpoints) {
  boost::asio::async_connect(
      socket_, std::move(endpoints),
      core_->on_strand([self = shared_from_this(), generation](const ErrorCode& error,
                                                               const tcp::endpoint&) {
        if (generation == self->generation_) self->on_connected(generation, error);
      }));
}

void PeerLink::on_connected(std::uint64_t generation, const ErrorCode& error) {
  if (error) {
    fail("connect", fmt::format("cannot connect to peer {} at {}: {}", peer_.str(),
                                dialed_address_, error.message()));
    return;
  }
  // Raft messages are small and latency-bound; coalescing is done above TCP.
  ErrorCode ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  const AsioTransportOptions& options = core_->options();
  hello_ = encode_hello(Hello{HelloType::kHello, options.cluster_id, options.self, peer_, {}});
  reply_reader_.emplace();
  boost::asio::async_write(
      socket_, boost::asio::buffer(hello_),
      core_->on_strand([self = shared_from_this(), generation](const ErrorCode& e, std::size_t) {
        if (generation != self->generation_) return;
        if (e) {
          self->fail("handshake", fmt::format("sending the hello to peer {} at {} failed: {}",
                                              self->peer_.str(), self->dialed_address_,
                                              e.message()));
          return;
        }
        self->read_reply(generation);
      }));
}

void PeerLink::read_reply(std::uint64_t generation) {
  socket_.async_read_some(
      boost::asio::buffer(reply_buffer_),
      core_->on_strand([self = shared_from_this(), generation](const ErrorCode& e,
                                                               std::size_t bytes) {
        if (generation == self->generation_) self->on_reply_bytes(generation, e, bytes);
      }));
}

void PeerLink::on_reply_bytes(std::uint64_t generation, const ErrorCode& error,
                              std::size_t bytes) {
  const std::string where = fmt::format("peer {} at {}", peer_.str(), dialed_address_);
  if (error) {
    fail("handshake", fmt::format("{} closed the connection during the handshake: {}", where,
                                  error.message()));
    return;
  }
  using Read = HelloReader::State;
  switch (reply_reader_->feed(std::string_view(reply_buffer_.data(), bytes))) {
    case Read::kNeedMore: read_reply(generation); return;
    case Read::kDone: on_reply(reply_reader_->hello()); return;
    case Read::kForeign:
    case Read::kNotPeer:
      bump(core_->counters().handshake_rejections);
      fail("not a peer", fmt::format("{} does not answer in the peer protocol", where));
      return;
    case Read::kVersionMismatch:
      bump(core_->counters().handshake_rejections);
      fail("version", fmt::format("{} speaks protocol version {}; this node speaks version {}",
                                  where, reply_reader_->peer_version(), kPeerProtocolVersion));
      return;
    case Read::kBadFrame:
      bump(core_->counters().handshake_rejections);
      fail("handshake", fmt::format("{} sent a bad handshake: {}", where, reply_reader_->error()));
      return;
  }
}

void PeerLink::on_reply(const Hello& reply) {
  const AsioTransportOptions& options = core_->options();
  const std::string where = fmt::format("peer {} at {}", peer_.str(), dialed_address_);
  if (reply.type == HelloType::kRefusal) {
    bump(core_->counters().handshake_rejections);
    fail("refused: " + reply.reason, fmt::format("{} refused the connection: {}", where,
                                                 reply.reason));
    return;
  }
  if (reply.type != HelloType::kWelcome || reply.cluster_id != options.cluster_id ||
      reply.sender != peer_ || reply.addressee != options.self) {
    bump(core_->counters().handshake_rejections);
    fail("identity", fmt::format("{} answered as node '{}' of cluster '{}', expected node '{}' "
                                 "of cluster '{}'", where, reply.sender.str(), reply.cluster_id,
                                 peer_.str(), options.cluster_id));
    return;
  }
  if (!reply_reader_->leftover().empty()) {
    fail("protocol", fmt::format("{} sent bytes after its welcome", where));
    return;
  }
  on_established();
}

void PeerLink::on_established() {
  const AsioTransportOptions& options = core_->options();
  state_ = State::kConnected;
  reply_reader_.reset();
  backoff_ms_ = options.reconnect_backoff_min_ms;
  unreachable_reported_ = false;
  bump(core_->counters().connects);
  core_->forget_logs("to " + peer_.str());
  last_write_done_ = SteadyClock::now();
  arm_timer(options.keepalive_interval_ms, &PeerLink::on_keepalive_tick);
  watch_for_close(generation_);
  write_next();
}

// The acceptor never writes after its welcome, so a completed read means the
// connection ended (or the peer broke the protocol): either way it is lost.
void PeerLink::watch_for_close(std::uint64_t generation) {
  socket_.async_read_some(
      boost::asio::buffer(&probe_byte_, 1),
      core_->on_strand([self = shared_from_this(), generation](const ErrorCode& error,
                                                               std::size_t) {
        if (generation != self->generation_) return;
        const std::string where =
            fmt::format("peer {} at {}", self->peer_.str(), self->dialed_address_);
        if (error) {
          self->fail("closed", fmt::format("{} closed the connection: {}", where,
                                           error.message()));
        } else {
          self->fail("protocol", fmt::format("{} sent bytes after its welcome", where));
        }
      }));
}

void PeerLink::write_next() {
  if (state_ != State::kConnected || write_in_flight_) return;
  batch_.clear();
  outbox_.take(batch_, core_->options().max_frame_bytes);
  if (batch_.empty()) return;
  // Everything queued since the last write, in one frame (payload layout in
  // net/peer_frame.hpp): varint length | envelope, per record.
  frame_.begin();
  for (const std::string& record : batch_) frame_.add_record(record);
  frame_.finish();
  start_write(/*keepalive=*/false, batch_.size());
}

void PeerLink::write_keepalive() {
  batch_.clear();
  frame_.begin();
  frame_.finish();
  start_write(/*keepalive=*/true, 0);
}

void PeerLink::start_write(bool keepalive, std::size_t envelopes) {
  write_in_flight_ = true;
  write_started_ = SteadyClock::now();
  const std::uint64_t generation = generation_;
  write_buffers_.clear();
  for (std::string_view piece : frame_.pieces()) {
    write_buffers_.emplace_back(piece.data(), piece.size());
  }
  boost::asio::async_write(
      socket_, write_buffers_,
      core_->on_strand([self = shared_from_this(), generation, keepalive, envelopes](
                           const ErrorCode& error, std::size_t bytes) {
        if (generation == self->generation_) self->on_written(error, bytes, keepalive, envelopes);
      }));
}

void PeerLink::on_written(const ErrorCode& error, std::size_t bytes, bool keepalive,
                          std::size_t envelopes) {
  write_in_flight_ = false;
  last_write_done_ = SteadyClock::now();
  if (error) {
    fail("write", fmt::format("writing to peer {} at {} failed: {}", peer_.str(),
                              dialed_address_, error.message()));
    return;
  }
  Counters& counters = core_->counters();
  bump(counters.bytes_sent, bytes);
  if (keepalive) {
    bump(counters.keepalives_sent);
  } else {
    bump(counters.frames_sent);
    bump(counters.envelopes_sent, envelopes);
  }
  batch_.clear();
  if (frame_.retained_bytes() > kRetainedWriteBufferBytes) frame_.release();
  write_next();
}

void PeerLink::arm_timer(std::uint64_t delay_ms, void (PeerLink::*on_fire)()) {
  const std::uint64_t timer_generation = ++timer_generation_;
  timer_.expires_after(ms(delay_ms));
  timer_.async_wait(core_->on_strand(
      [self = shared_from_this(), timer_generation, on_fire](const ErrorCode& error) {
        if (!error && timer_generation == self->timer_generation_) ((*self).*on_fire)();
      }));
}

void PeerLink::on_handshake_deadline() {
  if (state_ != State::kConnecting) return;
  fail("timeout", fmt::format("no handshake with peer {} at {} within {} ms", peer_.str(),
                              dialed_address_, core_->options().handshake_timeout_ms));
}

void PeerLink::on_keepalive_tick() {
  if (state_ != State::kConnected) return;
  const AsioTransportOptions& options = core_->options();
  const SteadyClock::time_point now = SteadyClock::now();
  if (write_in_flight_ && now - write_started_ >= ms(options.idle_timeout_ms)) {
    fail("stalled", fmt::format("a write to peer {} at {} has not completed in {} ms",
                                peer_.str(), dialed_address_, options.idle_timeout_ms));
    return;
  }
  if (!write_in_flight_ && now - last_write_done_ >= ms(options.keepalive_interval_ms)) {
    write_keepalive();
  }
  arm_timer(options.keepalive_interval_ms, &PeerLink::on_keepalive_tick);
}

void PeerLink::on_backoff_done() {
  if (state_ != State::kBackoff) return;
  if (outbox_.empty()) {
    state_ = State::kIdle;  // the next send dials
    return;
  }
  start_connect();
}

// The attempt failed or the connection was lost: count, log once per
// reason, tell the handler once per episode, and back off.
void PeerLink::fail(std::string_view reason, const std::string& message) {
  Counters& counters = core_->counters();
  bump(state_ == State::kConnected ? counters.disconnects : counters.connect_failures);
  drop_connection();
  core_->log_once("to " + peer_.str(), reason, message);
  if (!unreachable_reported_) {
    unreachable_reported_ = true;
    core_->report_unreachable(peer_);
  }
  // The callback may have stopped the transport or removed this peer.
  if (state_ == State::kClosed) return;
  state_ = State::kBackoff;
  const std::uint64_t delay_ms = core_->jittered_ms(backoff_ms_);
  backoff_ms_ = std::min<std::uint64_t>(backoff_ms_ * 2,
                                        core_->options().reconnect_backoff_max_ms);
  arm_timer(delay_ms, &PeerLink::on_backoff_done);
}

}  // namespace nodenomad::net::detail
