// AsioTransport over real sockets on 127.0.0.1. Most tests drive the
// io_context on the test thread with run_until() (deterministic, no sleeps);
// the last ones run it on a thread of its own to exercise send() and stop()
// from other threads.
#include <thread>

#include "net/peer_frame.hpp"
#include "net/transport_test_support.hpp"

namespace nodenomad::net {
namespace {

using namespace test;

TEST_CASE("two transports exchange Raft, request and response envelopes both ways", "[net]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  connect_both(*a, *b);

  const std::vector<Envelope> to_b = {raft_append(a->id, b->id, 3),
                                      request(a->id, b->id, 41, "get key-1")};
  const std::vector<Envelope> to_a = {request(b->id, a->id, 41, "value-1", EnvelopeKind::kResponse),
                                      raft_append(b->id, a->id, 4)};
  for (const Envelope& e : to_b) a->transport.send(e);
  for (const Envelope& e : to_a) b->transport.send(e);
  // A receiver may read a frame before its sender's write completion runs,
  // so wait for the senders' counters too.
  run_until(io, [&] {
    return a->recorder.count() == 2 && b->recorder.count() == 2 &&
           a->transport.stats().envelopes_sent == 2 && b->transport.stats().envelopes_sent == 2;
  }, "two envelopes sent and received at each node");

  CHECK(b->recorder.envelopes() == to_b);
  CHECK(a->recorder.envelopes() == to_a);
  for (const auto* node : {a.get(), b.get()}) {
    const AsioTransportStats stats = node->transport.stats();
    CHECK(stats.connects == 1);  // one outgoing connection, one incoming
    CHECK(stats.inbound_connections == 1);
    CHECK(stats.envelopes_sent == 2);
    CHECK(stats.envelopes_received == 2);
    CHECK(stats.bad_frames == 0);
  }
}

TEST_CASE("three transports all reach each other", "[net]") {
  LogCapture logs;
  asio::io_context io;
  std::vector<std::unique_ptr<TestNode>> nodes;
  for (const char* name : {"node-1", "node-2", "node-3"}) nodes.push_back(start_node(io, options_for(name)));
  for (auto& from : nodes) {
    for (auto& to : nodes) {
      if (from != to) from->transport.set_peer(to->id, to->address());
    }
  }
  for (auto& from : nodes) {
    for (auto& to : nodes) {
      if (from != to) from->transport.send(request(from->id, to->id, 1, from->id.str()));
    }
  }
  run_until(io, [&] {
    return std::all_of(nodes.begin(), nodes.end(), [](auto& n) { return n->recorder.count() == 2; });
  }, "two envelopes at each of three nodes");
  for (auto& node : nodes) {
    for (const Envelope& e : node->recorder.envelopes()) {
      CHECK(e.to == node->id);
      CHECK(e.payload == e.from.str());
    }
  }
}

TEST_CASE("envelopes queued together travel in few frames, in order", "[net][coalescing]") {
  LogCapture logs;
  asio::io_context io;
  AsioTransportOptions a_options = options_for("node-a");
  std::uint64_t expected_frames_at_most = 1;
  SECTION("everything queued before the connection is up goes in one frame") {}
  SECTION("a small max_frame_bytes splits the batch into several frames") {
    a_options.max_frame_bytes = 4096;
    expected_frames_at_most = 40;
  }
  auto a = start_node(io, a_options);
  auto b = start_node(io, options_for("node-b"));
  connect_both(*a, *b);

  constexpr std::uint64_t kCount = 500;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    a->transport.send(request(a->id, b->id, i, std::string(100, 'v')));
  }
  run_until(io, [&] {
    return b->recorder.count() == kCount && a->transport.stats().envelopes_sent == kCount;
  }, "500 envelopes sent by node-a and received at node-b");

  const std::vector<Envelope> received = b->recorder.envelopes();
  for (std::uint64_t i = 0; i < kCount; ++i) CHECK(received[i].request_id == i);
  const AsioTransportStats stats = a->transport.stats();
  CHECK(stats.frames_sent <= expected_frames_at_most);
  CHECK(b->transport.stats().frames_received >= stats.frames_sent);
  if (a_options.max_frame_bytes == 4096) CHECK(stats.frames_sent >= kCount * 100 / 4096);
}

TEST_CASE("a sender reconnects after its peer restarts on the same port", "[net][reconnect]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  a->transport.set_peer(b->id, b->address());
  const std::string b_address = b->address();

  a->transport.send(request(a->id, b->id, 1, "before"));
  run_until(io, [&] { return b->recorder.count() == 1; }, "the first envelope at node-b");

  b.reset();  // stop() closes the port at once
  run_until(io, [&] { return a->recorder.unreachable_reports(NodeId("node-b")) == 1; },
            "node-a to report node-b unreachable");
  a->transport.send(request(a->id, NodeId("node-b"), 2, "while away"));
  run_until(io, [&] { return a->transport.stats().connect_failures >= 2; },
            "node-a's redials of the stopped node-b to fail twice");

  AsioTransportOptions restarted = options_for("node-b");
  restarted.listen_address = b_address;
  b = start_node(io, restarted);
  run_until(io, [&] { return b->recorder.count() == 1; },
            "the envelope queued during the outage at the restarted node-b");

  CHECK(b->recorder.envelopes()[0].payload == "while away");
  const AsioTransportStats stats = a->transport.stats();
  CHECK(stats.connects == 2);
  CHECK(stats.disconnects == 1);
  // One failure episode, however many redials failed in it.
  CHECK(a->recorder.unreachable_reports(NodeId("node-b")) == 1);
  CHECK(logs.count("closed the connection") == 1);
}

TEST_CASE("a peer of another cluster is refused, logged once, and delivers nothing",
          "[net][handshake]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a", "alpha"));
  auto b = start_node(io, options_for("node-b", "beta"));
  a->transport.set_peer(b->id, b->address());
  a->transport.send(request(a->id, b->id, 1, "never"));
  run_until(io, [&] { return a->transport.stats().connect_failures >= 3; },
            "node-b to refuse node-a three times");

  CHECK(b->recorder.count() == 0);
  CHECK(b->transport.stats().handshake_rejections >= 3);
  CHECK(b->transport.stats().inbound_connections == 0);
  CHECK(a->transport.stats().connects == 0);
  INFO(logs.all());
  // Each side logs the reason once, not once per attempt.
  CHECK(logs.count("refused a peer connection from 127.0.0.1 (node-a): node 'node-a' belongs "
                   "to cluster 'alpha', but this node belongs to cluster 'beta'") == 1);
  CHECK(logs.count("refused the connection: node 'node-a' belongs to cluster 'alpha'") == 1);
  CHECK(a->recorder.unreachable_reports(b->id) == 1);
}

TEST_CASE("a dialer that reaches the wrong node is refused", "[net][handshake]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  a->transport.set_peer(NodeId("node-c"), b->address());  // a stale address book
  a->transport.send(request(a->id, NodeId("node-c"), 1, "x"));
  run_until(io, [&] { return b->transport.stats().handshake_rejections >= 1; },
            "node-b to refuse a hello meant for node-c");
  CHECK(b->recorder.count() == 0);
  CHECK(logs.count("node 'node-a' dialed node 'node-c', but this is node 'node-b'") >= 1);
}

TEST_CASE("another protocol version gets a refusal it can read", "[net][handshake]") {
  LogCapture logs;
  asio::io_context io;
  auto b = start_node(io, options_for("node-b"));
  RawClient raw(io, b->transport.local_port());
  raw.write(encode_hello(Hello{HelloType::kHello, "test-cluster", NodeId("node-z"), b->id, {}},
                         /*version=*/9));
  HelloReader reply;
  REQUIRE(reply.feed(raw.read_until_closed()) == HelloReader::State::kDone);
  CHECK(reply.hello().type == HelloType::kRefusal);
  CHECK_THAT(reply.hello().reason, Catch::Contains("protocol version 9 is not supported"));
  CHECK(b->transport.stats().handshake_rejections == 1);
}

TEST_CASE("garbage after a NUL byte is closed and the node keeps serving", "[net][bad-input]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  connect_both(*a, *b);
  for (int i = 0; i < 3; ++i) {
    RawClient raw(io, b->transport.local_port());
    raw.write(std::string("\0garbage that is no hello", 25));
    CHECK(raw.read_until_closed().empty());
  }
  CHECK(b->transport.stats().handshake_rejections == 3);
  CHECK(logs.count("its first bytes are NUL but not the peer magic") == 1);

  a->transport.send(request(a->id, b->id, 7, "still here"));
  run_until(io, [&] { return b->recorder.count() == 1; }, "node-b to serve node-a after garbage");
}

TEST_CASE("a frame header with a huge length closes the connection before any allocation",
          "[net][bad-input]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  {
    RawClient raw(io, b->transport.local_port());
    raw.write(encode_hello(Hello{HelloType::kHello, "test-cluster", NodeId("intruder"), b->id, {}}) +
              encode_frame_header(0xfffffff0u, 0));
    HelloReader reply;
    REQUIRE(reply.feed(raw.read_until_closed()) == HelloReader::State::kDone);
    CHECK(reply.hello().type == HelloType::kWelcome);  // then the connection closed
  }
  const AsioTransportStats stats = b->transport.stats();
  CHECK(stats.oversized_frames == 1);
  CHECK(stats.bad_frames == 1);
  CHECK(b->recorder.count() == 0);
  CHECK(logs.count("a frame claims 4294967280 bytes, above max_frame_bytes 67108864") == 1);

  connect_both(*a, *b);
  a->transport.send(request(a->id, b->id, 1, "fine"));
  run_until(io, [&] { return b->recorder.count() == 1; }, "node-b to serve node-a afterwards");
}

TEST_CASE("a frame that fails its checksum closes the connection", "[net][bad-input]") {
  LogCapture logs;
  asio::io_context io;
  auto b = start_node(io, options_for("node-b"));
  RawClient raw(io, b->transport.local_port());
  std::string frame = encode_frame("\x03" "abc");
  frame.back() = 'X';
  raw.write(encode_hello(Hello{HelloType::kHello, "test-cluster", NodeId("node-x"), b->id, {}}) +
            frame);
  raw.read_until_closed();
  CHECK(b->transport.stats().bad_frames == 1);
  CHECK(b->transport.stats().oversized_frames == 0);
  CHECK(logs.count("fails its checksum") == 1);
}

TEST_CASE("a connection that does not start with NUL goes to the foreign handler",
          "[net][one-port]") {
  LogCapture logs;
  asio::io_context io;
  auto b = std::make_unique<TestNode>(io, options_for("node-b"));
  std::optional<tcp::socket> handed;
  std::string already_read;
  b->transport.set_foreign_connection_handler([&](tcp::socket socket, std::string bytes) {
    handed.emplace(std::move(socket));
    already_read = std::move(bytes);
  });
  REQUIRE(b->transport.start(b->recorder).is_ok());

  const std::string http = "GET /health HTTP/1.1\r\nHost: node-b\r\n\r\n";
  RawClient raw(io, b->transport.local_port());
  raw.write(http);
  run_until(io, [&] { return handed.has_value(); }, "the HTTP client at the foreign handler");

  REQUIRE_FALSE(already_read.empty());
  CHECK(already_read.size() <= kOpeningBytes);  // only the opening was peeked
  CHECK(http.starts_with(already_read));
  // The rest of the request is still in the socket for the HTTP server.
  std::string rest(http.size() - already_read.size(), '\0');
  boost::system::error_code error;
  asio::read(*handed, asio::buffer(rest), error);
  REQUIRE_FALSE(error);
  CHECK(already_read + rest == http);
  asio::write(*handed, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\n\r\n")), error);
  handed->close(error);
  CHECK(raw.read_until_closed() == "HTTP/1.1 200 OK\r\n\r\n");
  CHECK(b->transport.stats().foreign_connections == 1);
}

TEST_CASE("without a foreign handler a foreign connection is closed", "[net][one-port]") {
  LogCapture logs;
  asio::io_context io;
  auto b = start_node(io, options_for("node-b"));
  RawClient raw(io, b->transport.local_port());
  raw.write("GET / HTTP/1.1\r\n\r\n");
  CHECK(raw.read_until_closed().empty());
  CHECK(b->transport.stats().foreign_connections == 1);
}

TEST_CASE("a connection silent during the handshake is closed at its timeout",
          "[net][timeouts]") {
  LogCapture logs;
  asio::io_context io;
  AsioTransportOptions options = options_for("node-b");
  options.handshake_timeout_ms = 50;
  auto b = start_node(io, options);
  RawClient raw(io, b->transport.local_port());
  raw.write(std::string_view("\0NN", 3));  // a prefix of the magic, then nothing
  CHECK(raw.read_until_closed().empty());
  CHECK(b->transport.stats().handshake_timeouts == 1);
}

TEST_CASE("keepalives hold an idle connection open; a silent peer is cut at idle_timeout",
          "[net][timeouts]") {
  LogCapture logs;
  asio::io_context io;
  AsioTransportOptions a_options = options_for("node-a");
  AsioTransportOptions b_options = options_for("node-b");
  for (AsioTransportOptions* o : {&a_options, &b_options}) {
    o->idle_timeout_ms = 200;
    o->keepalive_interval_ms = 40;
  }
  auto a = start_node(io, a_options);
  auto b = start_node(io, b_options);
  a->transport.set_peer(b->id, b->address());
  a->transport.send(request(a->id, b->id, 1, "one"));
  // Five keepalives span more than the idle timeout.
  run_until(io, [&] { return a->transport.stats().keepalives_sent >= 6; },
            "six keepalives from node-a");
  a->transport.send(request(a->id, b->id, 2, "two"));
  run_until(io, [&] { return b->recorder.count() == 2; }, "the second envelope at node-b");
  CHECK(a->transport.stats().connects == 1);
  CHECK(a->transport.stats().disconnects == 0);

  // A peer that handshakes and then says nothing is closed.
  RawClient raw(io, b->transport.local_port());
  raw.write(encode_hello(Hello{HelloType::kHello, "test-cluster", NodeId("mute"), b->id, {}}));
  raw.read_until_closed();
  CHECK(logs.count("closing the connection from peer mute: nothing received for 200 ms") == 1);
}

TEST_CASE("sends that cannot be queued are dropped and counted", "[net][bounds]") {
  LogCapture logs;
  asio::io_context io;
  AsioTransportOptions options = options_for("node-a");
  options.max_queue_envelopes_per_peer = 10;
  options.max_frame_bytes = 1024;
  AsioTransport idle(io, options);
  idle.send(request(NodeId("node-a"), NodeId("node-z"), 0, "before start"));
  CHECK(idle.stats().envelopes_dropped_not_running == 1);

  auto a = start_node(io, options);
  const NodeId dead("node-dead");
  a->transport.set_peer(dead, "127.0.0.1:" + std::to_string(unused_port(io)));
  for (std::uint64_t i = 0; i < 25; ++i) a->transport.send(request(a->id, dead, i, "x"));
  a->transport.send(request(a->id, NodeId("node-unknown"), 0, "x"));
  a->transport.send(request(a->id, dead, 0, std::string(2000, 'x')));

  AsioTransportStats stats = a->transport.stats();
  CHECK(stats.envelopes_dropped_queue_full == 15);  // the queue holds 10 while nothing drains
  CHECK(stats.envelopes_dropped_unknown_peer == 1);
  CHECK(stats.envelopes_dropped_too_large == 1);
  run_until(io, [&] { return a->transport.stats().connect_failures >= 3; },
            "three failed dials of a port nobody listens on");
  CHECK(a->recorder.unreachable_reports(dead) == 1);
  CHECK(logs.count("cannot connect to peer node-dead") == 1);

  a->transport.stop();
  a->transport.send(request(a->id, dead, 0, "after stop"));
  CHECK(a->transport.stats().envelopes_dropped_not_running == 1);
}

TEST_CASE("a taken port is a clear kIOError naming the address", "[net]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  AsioTransportOptions options = options_for("node-b");
  options.listen_address = a->address();
  Recorder recorder;
  AsioTransport b(io, options);
  const Status status = b.start(recorder);
  CHECK(status.is(StatusCode::kIOError));
  CHECK(status.message() == "listen on " + a->address() + ": Address already in use");
}

TEST_CASE("bad options are refused at start", "[net]") {
  asio::io_context io;
  Recorder recorder;
  AsioTransportOptions options = options_for("node-a");
  SECTION("no node id") { options.self = NodeId(); }
  SECTION("keepalive not well below the idle timeout") { options.keepalive_interval_ms = 8000; }
  SECTION("backoff min above max") { options.reconnect_backoff_min_ms = 100; }
  SECTION("a listen address without a port") { options.listen_address = "127.0.0.1"; }
  AsioTransport transport(io, options);
  CHECK(transport.start(recorder).is(StatusCode::kInvalidArgument));
}

TEST_CASE("stop() from inside a callback ends delivery at once", "[net][stop]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  a->transport.set_peer(b->id, b->address());
  b->recorder.set_on_first_envelope([&] {
    b->transport.stop();
    b->recorder.mark_stopped();
  });
  for (std::uint64_t i = 0; i < 10; ++i) a->transport.send(request(a->id, b->id, i, "x"));
  run_until(io, [&] { return a->recorder.unreachable_reports(b->id) == 1; },
            "node-a to see node-b's connection end");
  CHECK(b->recorder.count() == 1);  // the other nine were in the same frame
  CHECK(b->recorder.calls_after_stop() == 0);
}

TEST_CASE("send and stop from other threads while the io_context runs on its own",
          "[net][threads]") {
  LogCapture logs;
  asio::io_context io;
  auto a = start_node(io, options_for("node-a"));
  auto b = start_node(io, options_for("node-b"));
  connect_both(*a, *b);
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });

  constexpr std::uint64_t kThreads = 4;
  constexpr std::uint64_t kPerThread = 250;
  std::vector<std::thread> senders;
  for (std::uint64_t t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < kPerThread; ++i) {
        a->transport.send(request(a->id, b->id, t * 1000 + i, "x"));
      }
    });
  }
  for (std::thread& sender : senders) sender.join();
  const bool all_arrived = b->recorder.wait_for_count(kThreads * kPerThread);
  INFO("waited for 1000 envelopes at node-b");
  CHECK(all_arrived);

  // Each thread's envelopes arrive in the order it sent them.
  std::vector<std::uint64_t> next(kThreads, 0);
  for (const Envelope& e : b->recorder.envelopes()) {
    CHECK(e.request_id % 1000 == next[e.request_id / 1000]++);
  }
  b->transport.stop();  // from the test thread, while the io thread runs
  b->recorder.mark_stopped();
  for (std::uint64_t i = 0; i < 50; ++i) a->transport.send(request(a->id, b->id, i, "late"));
  a->transport.stop();
  work.reset();
  runner.join();  // returns: stop() left no socket or timer waiting
  CHECK(b->recorder.calls_after_stop() == 0);
}

}  // namespace
}  // namespace nodenomad::net
