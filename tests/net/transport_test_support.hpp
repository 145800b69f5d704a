// Helpers for the AsioTransport tests: a recording handler, a log capture,
// test nodes on 127.0.0.1 port 0, a raw TCP client for bytes no transport
// would send, and run_until(), which drives the io_context on the test thread
// until a condition holds or a deadline passes (and then names what it waited
// for). Nothing here sleeps.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

// GCC 12 false positives inside Asio (see nodenomad/net/asio_transport.hpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#pragma GCC diagnostic pop

#include "nodenomad/logging.hpp"
#include "nodenomad/net/asio_transport.hpp"

namespace nodenomad::net::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr std::chrono::seconds kDeadline{10};

// Runs `io` on this thread in short slices until `done()`; fails the test
// naming `what` if kDeadline passes first.
template <typename Condition>
void run_until(asio::io_context& io, Condition done, std::string_view what) {
  const Clock::time_point deadline = Clock::now() + kDeadline;
  while (!done()) {
    if (Clock::now() > deadline) FAIL("gave up after 10 s waiting for " << what);
    io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
}

// Records what a transport delivers; safe to read from another thread.
class Recorder final : public TransportHandler {
 public:
  void on_envelope(Envelope envelope) override {
    std::function<void()> hook;
    {
      std::lock_guard lock(mu_);
      if (after_stop_) ++calls_after_stop_;
      envelopes_.push_back(std::move(envelope));
      hook = std::exchange(on_first_envelope_, nullptr);
    }
    changed_.notify_all();
    if (hook) hook();
  }
  void on_peer_unreachable(const NodeId& peer) override {
    {
      std::lock_guard lock(mu_);
      if (after_stop_) ++calls_after_stop_;
      unreachable_.push_back(peer);
    }
    changed_.notify_all();
  }

  std::size_t count() const {
    std::lock_guard lock(mu_);
    return envelopes_.size();
  }
  std::vector<Envelope> envelopes() const {
    std::lock_guard lock(mu_);
    return envelopes_;
  }
  std::size_t unreachable_reports(const NodeId& peer) const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count(unreachable_.begin(), unreachable_.end(), peer));
  }
  // Blocks (for a transport run by another thread) until `count` envelopes
  // arrived; false after kDeadline.
  bool wait_for_count(std::size_t count) {
    std::unique_lock lock(mu_);
    return changed_.wait_until(lock, Clock::now() + kDeadline,
                               [&] { return envelopes_.size() >= count; });
  }
  void set_on_first_envelope(std::function<void()> hook) {
    std::lock_guard lock(mu_);
    on_first_envelope_ = std::move(hook);
  }
  // From now on any callback is a broken promise of stop().
  void mark_stopped() {
    std::lock_guard lock(mu_);
    after_stop_ = true;
  }
  int calls_after_stop() const {
    std::lock_guard lock(mu_);
    return calls_after_stop_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Envelope> envelopes_;
  std::vector<NodeId> unreachable_;
  std::function<void()> on_first_envelope_;
  bool after_stop_ = false;
  int calls_after_stop_ = 0;
};

// Collects log lines for the duration of a test (and keeps stderr quiet).
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](LogLevel, std::string_view, std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(message);
    });
  }
  ~LogCapture() { set_log_sink({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::size_t count(std::string_view text) const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const auto& l) {
      return l.find(text) != std::string::npos;
    }));
  }
  std::string all() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const std::string& line : lines_) out += line + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

inline AsioTransportOptions options_for(const std::string& self,
                                        const std::string& cluster = "test-cluster") {
  AsioTransportOptions options;
  options.self = NodeId(self);
  options.cluster_id = cluster;
  options.listen_address = "127.0.0.1:0";
  options.reconnect_backoff_min_ms = 5;
  options.reconnect_backoff_max_ms = 50;
  return options;
}

struct TestNode {
  TestNode(asio::io_context& io, AsioTransportOptions options)
      : id(options.self), transport(io, std::move(options)) {}
  std::string address() const { return "127.0.0.1:" + std::to_string(transport.local_port()); }

  NodeId id;
  Recorder recorder;
  AsioTransport transport;  // declared after the recorder: destroyed (stopped) first
};

inline std::unique_ptr<TestNode> start_node(asio::io_context& io, AsioTransportOptions options) {
  auto node = std::make_unique<TestNode>(io, std::move(options));
  const Status started = node->transport.start(node->recorder);
  INFO(started.to_string());
  REQUIRE(started.is_ok());
  REQUIRE(node->transport.local_port() != 0);
  return node;
}

inline void connect_both(TestNode& a, TestNode& b) {
  a.transport.set_peer(b.id, b.address());
  b.transport.set_peer(a.id, a.address());
}

inline Envelope request(const NodeId& from, const NodeId& to, std::uint64_t id,
                        std::string payload, EnvelopeKind kind = EnvelopeKind::kRequest) {
  Envelope e;
  e.from = from;
  e.to = to;
  e.group = GroupId(2);
  e.kind = kind;
  e.request_id = id;
  e.payload = std::move(payload);
  return e;
}

inline Envelope raft_append(const NodeId& from, const NodeId& to, std::uint64_t term) {
  Envelope e;
  e.from = from;
  e.to = to;
  e.group = GroupId(5);
  e.kind = EnvelopeKind::kRaft;
  e.message.type = MessageType::kAppend;
  e.message.from = from;
  e.message.to = to;
  e.message.term = Term(term);
  e.message.index = LogIndex(9);
  e.message.log_term = Term(term);
  e.message.commit = LogIndex(8);
  e.message.entries.push_back(Entry{Term(term), LogIndex(10), EntryType::kNormal, "set k v"});
  return e;
}

// A hand-driven client on the same io_context. connect() and write() are
// synchronous (a listening socket accepts into its backlog without the
// server running); read_until_closed() runs the io_context.
class RawClient {
 public:
  RawClient(asio::io_context& io, std::uint16_t port) : io_(io), socket_(io) {
    boost::system::error_code error;
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), error);
    REQUIRE_FALSE(error);
  }
  void write(std::string_view bytes) {
    boost::system::error_code error;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), error);
    REQUIRE_FALSE(error);
  }
  // Everything the other side sent before it closed the connection.
  std::string read_until_closed() {
    std::string received;
    bool closed = false;
    std::array<char, 4096> buffer{};
    std::function<void()> read_next = [&] {
      socket_.async_read_some(asio::buffer(buffer),
                              [&](const boost::system::error_code& error, std::size_t n) {
                                received.append(buffer.data(), n);
                                if (error) {
                                  closed = true;
                                } else {
                                  read_next();
                                }
                              });
    };
    read_next();
    run_until(io_, [&] { return closed; }, "the transport to close the raw connection");
    return received;
  }

 private:
  asio::io_context& io_;
  tcp::socket socket_;
};

// A port nothing listens on (bound, then released).
inline std::uint16_t unused_port(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace nodenomad::net::test
