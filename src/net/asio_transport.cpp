// AsioTransport's listener side: TransportCore (start, stop, send, peers,
// callbacks) and InboundSession (one accepted connection). The outgoing side
// is in peer_link.cpp; the wire format in peer_frame.cpp.
#include "nodenomad/net/asio_transport.hpp"

// See nodenomad/net/asio_transport.hpp: GCC 12 false positives inside Asio.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#pragma GCC diagnostic pop
#include <fmt/format.h>

#include "net/transport_core.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad::net {
namespace detail {
namespace {

// Reads of an established peer connection: big enough for a batch of Raft
// appends in one system call, small enough to keep per connection.
constexpr std::size_t kFrameReadBytes = 64 * 1024;
// Handshake reads past the 5-byte opening: a hello is well under this.
constexpr std::size_t kHelloReadBytes = 512;
// After a failed accept (descriptors exhausted, ...), wait this long instead
// of spinning on the error.
constexpr std::uint64_t kAcceptRetryDelayMs = 100;

Status invalid_option(std::string_view what) {
  return Status::invalid_argument(fmt::format("AsioTransportOptions: {}", what));
}

}  // namespace

AsioTransportStats Counters::snapshot() const {
  auto get = [](const Counter& counter) { return counter.load(std::memory_order_relaxed); };
  AsioTransportStats s;
  s.frames_sent = get(frames_sent);
  s.envelopes_sent = get(envelopes_sent);
  s.bytes_sent = get(bytes_sent);
  s.keepalives_sent = get(keepalives_sent);
  s.frames_received = get(frames_received);
  s.envelopes_received = get(envelopes_received);
  s.bytes_received = get(bytes_received);
  s.envelopes_dropped_queue_full = get(envelopes_dropped_queue_full);
  s.envelopes_dropped_unknown_peer = get(envelopes_dropped_unknown_peer);
  s.envelopes_dropped_too_large = get(envelopes_dropped_too_large);
  s.envelopes_dropped_not_running = get(envelopes_dropped_not_running);
  s.connects = get(connects);
  s.connect_failures = get(connect_failures);
  s.disconnects = get(disconnects);
  s.inbound_connections = get(inbound_connections);
  s.handshake_rejections = get(handshake_rejections);
  s.handshake_timeouts = get(handshake_timeouts);
  s.bad_frames = get(bad_frames);
  s.oversized_frames = get(oversized_frames);
  s.foreign_connections = get(foreign_connections);
  s.inbound_refused_at_capacity = get(inbound_refused_at_capacity);
  s.chunks_compressed = get(chunks_compressed);
  s.chunks_incompressible = get(chunks_incompressible);
  s.chunks_not_tried = get(chunks_not_tried);
  return s;
}

// ---- InboundSession ---------------------------------------------------------

InboundSession::InboundSession(std::shared_ptr<TransportCore> core, tcp::socket socket,
                               std::uint64_t id)
    : core_(std::move(core)), socket_(std::move(socket)), watchdog_(core_->io()), id_(id) {
  ErrorCode error;
  const tcp::endpoint remote = socket_.remote_endpoint(error);
  remote_ip_ = error ? std::string("an unknown address") : remote.address().to_string();
}

void InboundSession::start() {
  arm_watchdog(SteadyClock::now() + ms(core_->options().handshake_timeout_ms));
  read_more();
}

void InboundSession::read_more() {
  std::size_t want = kFrameReadBytes;
  if (phase_ == Phase::kHello) {
    // Never read past the opening before it is settled: a foreign client's
    // bytes beyond it stay in the socket for whoever serves it.
    const std::size_t missing = hello_reader_.opening_bytes_missing();
    want = missing > 0 ? missing : kHelloReadBytes;
  }
  if (read_buffer_.size() < want) read_buffer_.resize(want);
  socket_.async_read_some(boost::asio::buffer(read_buffer_.data(), want),
                          core_->on_strand([self = shared_from_this()](
                                               const ErrorCode& error, std::size_t bytes) {
                            self->on_read(error, bytes);
                          }));
}

void InboundSession::on_read(const ErrorCode& error, std::size_t bytes) {
  if (phase_ != Phase::kHello && phase_ != Phase::kFrames) return;
  if (error) {
    // The other side closed or reset: normal when a peer restarts.
    close();
    return;
  }
  const std::string_view received(read_buffer_.data(), bytes);
  if (phase_ == Phase::kHello) {
    on_hello_bytes(received);
  } else {
    on_frame_bytes(received);
  }
}

void InboundSession::on_hello_bytes(std::string_view bytes) {
  using State = HelloReader::State;
  switch (hello_reader_.feed(bytes)) {
    case State::kNeedMore: read_more(); return;
    case State::kDone: on_hello(hello_reader_.hello()); return;
    case State::kForeign: {
      phase_ = Phase::kClosed;
      watchdog_.cancel();
      core_->forget_inbound(id_);
      core_->hand_to_foreign(std::move(socket_), hello_reader_.received(), remote_ip_);
      return;
    }
    case State::kVersionMismatch:
      refuse("version",
             fmt::format("protocol version {} is not supported; this node speaks version {}",
                         hello_reader_.peer_version(), kPeerProtocolVersion),
             kPeerProtocolVersion);
      return;
    case State::kNotPeer:
    case State::kBadFrame:
      bump(core_->counters().handshake_rejections);
      close_for("not a peer", fmt::format("closing a connection from {}: {}", remote_ip_,
                                          hello_reader_.error()));
      return;
  }
}

void InboundSession::on_hello(const Hello& hello) {
  const AsioTransportOptions& options = core_->options();
  if (hello.type != HelloType::kHello) {
    refuse("not a hello", "the first handshake message must be a hello", kPeerProtocolVersion);
  } else if (hello.cluster_id != options.cluster_id) {
    refuse("cluster id",
           fmt::format("node '{}' belongs to cluster '{}', but this node belongs to cluster '{}'",
                       hello.sender.str(), hello.cluster_id, options.cluster_id),
           kPeerProtocolVersion);
  } else if (hello.addressee != options.self) {
    refuse("addressee",
           fmt::format("node '{}' dialed node '{}', but this is node '{}': check its peer "
                       "addresses", hello.sender.str(), hello.addressee.str(), options.self.str()),
           kPeerProtocolVersion);
  } else {
    accept_peer(hello);
  }
}

void InboundSession::refuse(std::string_view reason, const std::string& why,
                            std::uint8_t version) {
  bump(core_->counters().handshake_rejections);
  const bool named = hello_reader_.state() == HelloReader::State::kDone;
  const std::string subject = named ? hello_reader_.hello().sender.str() : remote_ip_;
  core_->log_once("from " + subject, reason,
                  fmt::format("refused a peer connection from {} ({}): {}", remote_ip_, subject,
                              why));
  phase_ = Phase::kRefusing;
  Hello refusal{HelloType::kRefusal, core_->options().cluster_id, core_->options().self, {}, why};
  reply_ = encode_hello(refusal, version);
  // Close once the refusal is out; the handshake watchdog still bounds the write.
  boost::asio::async_write(
      socket_, boost::asio::buffer(reply_),
      core_->on_strand([self = shared_from_this()](const ErrorCode&, std::size_t) {
        self->close();
      }));
}

void InboundSession::accept_peer(const Hello& hello) {
  const AsioTransportOptions& options = core_->options();
  peer_ = hello.sender;
  phase_ = Phase::kFrames;
  bump(core_->counters().inbound_connections);
  core_->forget_logs("from " + peer_.str());
  reply_ = encode_hello(Hello{HelloType::kWelcome, options.cluster_id, options.self, peer_, {}});
  // A failed write shows up on the read side too; nothing to do here.
  boost::asio::async_write(socket_, boost::asio::buffer(reply_),
                           core_->on_strand([self = shared_from_this()](const ErrorCode& error,
                                                                        std::size_t) {
                             if (error) self->close();
                           }));
  frames_.emplace(options.max_frame_bytes);
  last_read_ = SteadyClock::now();
  arm_watchdog(last_read_ + ms(options.idle_timeout_ms));
  const std::string leftover(hello_reader_.leftover());
  if (leftover.empty()) {
    read_more();
  } else {
    on_frame_bytes(leftover);
  }
}

void InboundSession::on_frame_bytes(std::string_view bytes) {
  last_read_ = SteadyClock::now();
  bump(core_->counters().bytes_received, bytes.size());
  frames_->append(bytes);
  // Each pass consumes one buffered frame, so this ends with the bytes at hand.
  for (;;) {
    const FrameStep step = frames_->next();
    if (step.status == FrameStatus::kNeedMore) break;
    if (!handle_frame(step)) return;
  }
  read_more();
}

// Answers whether to go on reading.
bool InboundSession::handle_frame(const FrameStep& step) {
  Counters& counters = core_->counters();
  const AsioTransportOptions& options = core_->options();
  switch (step.status) {
    case FrameStatus::kTooLarge:
      bump(counters.bad_frames);
      bump(counters.oversized_frames);
      close_for("oversized frame",
                fmt::format("closing the connection from peer {}: a frame claims {} bytes, above "
                            "max_frame_bytes {}", peer_.str(), step.claimed_bytes,
                            options.max_frame_bytes));
      return false;
    case FrameStatus::kBadChecksum:
      bump(counters.bad_frames);
      close_for("bad checksum", fmt::format("closing the connection from peer {}: a frame "
                                            "fails its checksum", peer_.str()));
      return false;
    case FrameStatus::kNeedMore:
    case FrameStatus::kFrame: break;
  }
  bump(counters.frames_received);
  envelopes_.clear();
  const Status decoded = decode_frame_payload(step.payload, envelopes_, step.owner);
  if (!decoded.is_ok()) {
    // A checksummed frame that does not decode comes from a broken or hostile
    // peer: deliver none of it.
    bump(counters.bad_frames);
    close_for("bad envelope", fmt::format("closing the connection from peer {}: {}", peer_.str(),
                                          decoded.to_string()));
    return false;
  }
  if (envelopes_.empty()) return true;  // a keepalive
  bump(counters.envelopes_received, envelopes_.size());
  if (!core_->deliver(envelopes_)) {
    close();
    return false;
  }
  return phase_ == Phase::kFrames;  // a callback may have stopped the transport
}

void InboundSession::arm_watchdog(SteadyClock::time_point at) {
  watchdog_.expires_at(at);
  watchdog_.async_wait(core_->on_strand([self = shared_from_this()](const ErrorCode& error) {
    if (!error) self->on_watchdog();
  }));
}

// May also run for a wait that was replaced just as it expired, so it checks
// the clock rather than trusting that it is due.
void InboundSession::on_watchdog() {
  const AsioTransportOptions& options = core_->options();
  const SteadyClock::time_point now = SteadyClock::now();
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kRefusing) {
    close();
  } else if (phase_ == Phase::kHello) {
    bump(core_->counters().handshake_timeouts);
    close_for("handshake timeout",
              fmt::format("closing a connection from {}: no complete hello within {} ms",
                          remote_ip_, options.handshake_timeout_ms));
  } else if (now < last_read_ + ms(options.idle_timeout_ms)) {
    arm_watchdog(last_read_ + ms(options.idle_timeout_ms));
  } else {
    close_for("idle", fmt::format("closing the connection from peer {}: nothing received for "
                                  "{} ms", peer_.str(), options.idle_timeout_ms));
  }
}

void InboundSession::close_for(std::string_view reason, const std::string& message) {
  core_->log_once("from " + (peer_.empty() ? remote_ip_ : peer_.str()), reason, message);
  close();
}

void InboundSession::close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  ErrorCode ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  watchdog_.cancel();
  core_->forget_inbound(id_);
}

// ---- TransportCore ------------------------------------------------------------

TransportCore::TransportCore(boost::asio::io_context& io, AsioTransportOptions options)
    : io_(io),
      strand_(boost::asio::make_strand(io)),
      options_(std::move(options)),
      encode_options_{.compress_snapshot_chunks = options_.compress_snapshot_chunks},
      acceptor_(io),
      accept_retry_timer_(io),
      backoff_rng_(options_.backoff_seed) {}

void TransportCore::set_foreign_handler(AsioTransport::ForeignConnectionHandler handler) {
  NN_ASSERT(phase_.load() == Phase::kNew, "set_foreign_connection_handler() comes before start()");
  foreign_handler_ = std::move(handler);
}

Status TransportCore::validate_options() const {
  const AsioTransportOptions& o = options_;
  if (o.self.empty()) return invalid_option("self is empty");
  if (o.self.str().size() > kMaxHelloFieldBytes || o.cluster_id.size() > kMaxHelloFieldBytes) {
    return invalid_option(fmt::format("self and cluster_id are at most {} bytes",
                                      kMaxHelloFieldBytes));
  }
  if (o.max_frame_bytes < 64) return invalid_option("max_frame_bytes is below 64");
  if (o.max_queue_bytes_per_peer == 0 || o.max_queue_envelopes_per_peer == 0) {
    return invalid_option("max_queue_bytes_per_peer and max_queue_envelopes_per_peer must be "
                          "positive");
  }
  if (o.reconnect_backoff_min_ms == 0 || o.reconnect_backoff_min_ms > o.reconnect_backoff_max_ms) {
    return invalid_option("reconnect_backoff_min_ms must be positive and at most "
                          "reconnect_backoff_max_ms");
  }
  if (o.handshake_timeout_ms == 0) return invalid_option("handshake_timeout_ms is 0");
  // Two keepalives fit in one idle timeout, so a live peer is never cut off.
  if (o.keepalive_interval_ms == 0 ||
      2 * std::uint64_t{o.keepalive_interval_ms} >= o.idle_timeout_ms) {
    return invalid_option("keepalive_interval_ms must be positive and below half of "
                          "idle_timeout_ms");
  }
  if (o.max_inbound_connections == 0) return invalid_option("max_inbound_connections is 0");
  return Status::ok();
}

// Binds synchronously, so that start() can answer a taken port at once. The
// acceptor is not yet shared with any handler, so any thread may do it.
Status TransportCore::open_acceptor() {
  const std::string& address = options_.listen_address;
  const std::optional<HostPort> host_port = parse_host_port(address);
  if (!host_port) {
    return Status::invalid_argument(fmt::format("listen address '{}' is not host:port", address));
  }
  auto failed = [&](const ErrorCode& error) {
    ErrorCode ignored;
    acceptor_.close(ignored);
    return Status::io_error(fmt::format("listen on {}: {}", address, error.message()));
  };
  ErrorCode error;
  tcp::endpoint endpoint(boost::asio::ip::make_address(host_port->host, error), host_port->port);
  if (error) {
    tcp::resolver resolver(io_);
    const auto results = resolver.resolve(host_port->host, std::to_string(host_port->port),
                                          tcp::resolver::passive, error);
    if (error) return failed(error);
    if (results.empty()) return failed(boost::asio::error::host_not_found);
    endpoint = results.begin()->endpoint();
  }
  if (acceptor_.open(endpoint.protocol(), error)) return failed(error);
  // A restarted node must get its port back while old connections linger
  // in TIME_WAIT.
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), error)) return failed(error);
  if (acceptor_.bind(endpoint, error)) return failed(error);
  if (acceptor_.listen(tcp::acceptor::max_listen_connections, error)) return failed(error);
  const tcp::endpoint bound = acceptor_.local_endpoint(error);
  if (error) return failed(error);
  local_port_.store(bound.port());
  return Status::ok();
}

Status TransportCore::start(TransportHandler& handler) {
  NN_ASSERT(phase_.load() == Phase::kNew, "AsioTransport::start() is called once");
  NN_RETURN_IF_ERROR(validate_options());
  NN_RETURN_IF_ERROR(open_acceptor());
  gate_.open(&handler);
  phase_.store(Phase::kRunning);
  post([self = shared_from_this()] { self->accept_next(); });
  return Status::ok();
}

void TransportCore::accept_next() {
  if (closed_) return;
  acceptor_.async_accept(on_strand([self = shared_from_this()](const ErrorCode& error,
                                                               tcp::socket socket) {
    self->on_accept(error, std::move(socket));
  }));
}

void TransportCore::on_accept(const ErrorCode& error, tcp::socket socket) {
  if (closed_ || error == boost::asio::error::operation_aborted) return;
  if (error) {
    log_once("listener", error.message(),
             fmt::format("accepting on {} failed: {}; retrying", options_.listen_address,
                         error.message()));
    accept_retry_timer_.expires_after(ms(kAcceptRetryDelayMs));
    accept_retry_timer_.async_wait(on_strand([self = shared_from_this()](const ErrorCode& e) {
      if (!e) self->accept_next();
    }));
    return;
  }
  if (inbound_.size() >= options_.max_inbound_connections) {
    bump(counters_.inbound_refused_at_capacity);
    log_once("listener", "capacity",
             fmt::format("refusing connections beyond max_inbound_connections ({})",
                         options_.max_inbound_connections));
    ErrorCode ignored;
    socket.close(ignored);
  } else {
    const std::uint64_t id = next_inbound_id_++;
    auto session = std::make_shared<InboundSession>(shared_from_this(), std::move(socket), id);
    inbound_.emplace(id, session);
    session->start();
  }
  accept_next();
}

void TransportCore::stop() {
  Phase expected = Phase::kRunning;
  if (!phase_.compare_exchange_strong(expected, Phase::kStopped)) {
    if (expected == Phase::kNew) {
      // Never started: nothing ran on the strand; only the links' references
      // back to this core need breaking.
      phase_.store(Phase::kStopped);
      std::lock_guard lock(peers_mu_);
      peers_.clear();
    }
    return;
  }
  // On the strand means inside a callback (host code runs nowhere else on
  // it): no other callback can be running then, and this one is the caller.
  gate_.close(/*wait_for_running=*/!strand_.running_in_this_thread());
  // Waits for a handler that is running on another thread; after this no
  // handler does anything (Guarded checks closed_).
  std::lock_guard lock(io_mu_);
  close_all();
}

void TransportCore::close_all() {
  closed_ = true;
  ErrorCode ignored;
  acceptor_.close(ignored);
  accept_retry_timer_.cancel();
  std::unordered_map<NodeId, std::shared_ptr<PeerLink>> links;
  {
    std::lock_guard lock(peers_mu_);
    links.swap(peers_);
  }
  for (auto& [peer, link] : links) link->close();
  auto sessions = std::move(inbound_);
  inbound_.clear();
  for (auto& [id, weak] : sessions) {
    if (auto session = weak.lock()) session->close();
  }
}

void TransportCore::send(Envelope envelope) {
  if (phase_.load() != Phase::kRunning) {
    bump(counters_.envelopes_dropped_not_running);
    return;
  }
  const std::shared_ptr<PeerLink> link = find_link(envelope.to);
  if (!link) {
    bump(counters_.envelopes_dropped_unknown_peer);
    return;
  }
  // Encoding here spreads the work over the callers' threads, and makes the
  // queue bound count the bytes that will really be written.
  std::string record;
  count_chunk(
      encode_envelope_with_history(envelope, record, encode_options_, link->chunk_history()));
  if (record_bytes(record.size()) > options_.max_frame_bytes) {
    bump(counters_.envelopes_dropped_too_large);
    return;
  }
  switch (link->outbox().push(std::move(record), options_.max_queue_envelopes_per_peer,
                              options_.max_queue_bytes_per_peer)) {
    case Outbox::Push::kQueued: return;
    case Outbox::Push::kQueuedFirst:
      post([link] { link->flush(); });
      return;
    case Outbox::Push::kFull: bump(counters_.envelopes_dropped_queue_full); return;
    case Outbox::Push::kClosed: bump(counters_.envelopes_dropped_unknown_peer); return;
  }
}

std::shared_ptr<PeerLink> TransportCore::find_link(const NodeId& peer) {
  std::lock_guard lock(peers_mu_);
  const auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : it->second;
}

void TransportCore::count_chunk(ChunkEncoding encoding) {
  switch (encoding) {
    case ChunkEncoding::kNotTried: return;
    case ChunkEncoding::kCompressed: bump(counters_.chunks_compressed); return;
    case ChunkEncoding::kIncompressible: bump(counters_.chunks_incompressible); return;
    case ChunkEncoding::kSkipped: bump(counters_.chunks_not_tried); return;
  }
}

void TransportCore::set_peer(const NodeId& peer, std::string address) {
  std::shared_ptr<PeerLink> changed;
  {
    std::lock_guard lock(peers_mu_);
    // Checked under the lock: close_all() empties the map after the phase
    // turns kStopped, so no link can be added behind its back.
    if (phase_.load() == Phase::kStopped) return;
    std::shared_ptr<PeerLink>& link = peers_[peer];
    if (!link) {
      link = std::make_shared<PeerLink>(shared_from_this(), peer, std::move(address));
      return;
    }
    if (link->set_address(std::move(address))) changed = link;
  }
  if (changed && phase_.load() == Phase::kRunning) {
    post([changed] { changed->redial(); });
  }
}

void TransportCore::remove_peer(const NodeId& peer) {
  std::shared_ptr<PeerLink> removed;
  {
    std::lock_guard lock(peers_mu_);
    const auto it = peers_.find(peer);
    if (it == peers_.end()) return;
    removed = std::move(it->second);
    peers_.erase(it);
  }
  removed->outbox().close();
  if (phase_.load() == Phase::kRunning) {
    post([removed] { removed->close(); });
  }
}

std::uint64_t TransportCore::jittered_ms(std::uint64_t delay_ms) {
  return backoff_rng_.uniform_in(delay_ms / 2, delay_ms);
}

void TransportCore::report_unreachable(const NodeId& peer) {
  call_host([&](TransportHandler& handler) { handler.on_peer_unreachable(peer); });
}

bool TransportCore::deliver(std::vector<Envelope>& envelopes) {
  return call_host([&](TransportHandler& handler) {
    for (Envelope& envelope : envelopes) {
      // The handler may call stop() between two envelopes; none after it.
      if (phase_.load() != Phase::kRunning) return;
      handler.on_envelope(std::move(envelope));
    }
  });
}

void TransportCore::hand_to_foreign(tcp::socket socket, std::string already_read,
                                    const std::string& remote) {
  bump(counters_.foreign_connections);
  if (!foreign_handler_) {
    log_once("from " + remote, "foreign",
             fmt::format("closing a connection from {}: it does not speak the peer protocol "
                         "and no foreign connection handler is set", remote));
    ErrorCode ignored;
    socket.close(ignored);
    return;
  }
  call_host([&](TransportHandler&) {
    foreign_handler_(std::move(socket), std::move(already_read));
  });
}

}  // namespace detail

// ---- AsioTransport --------------------------------------------------------------

AsioTransport::AsioTransport(boost::asio::io_context& io, AsioTransportOptions options)
    : core_(std::make_shared<detail::TransportCore>(io, std::move(options))) {}

AsioTransport::~AsioTransport() { core_->stop(); }

void AsioTransport::set_foreign_connection_handler(ForeignConnectionHandler handler) {
  core_->set_foreign_handler(std::move(handler));
}

Status AsioTransport::start(TransportHandler& handler) { return core_->start(handler); }
void AsioTransport::stop() { core_->stop(); }
void AsioTransport::send(Envelope envelope) { core_->send(std::move(envelope)); }
void AsioTransport::set_peer(const NodeId& peer, std::string address) {
  core_->set_peer(peer, std::move(address));
}
void AsioTransport::remove_peer(const NodeId& peer) { core_->remove_peer(peer); }
std::uint16_t AsioTransport::local_port() const { return core_->local_port(); }
AsioTransportStats AsioTransport::stats() const { return core_->stats(); }

}  // namespace nodenomad::net
