// HttpApi over real loopback sockets: keep-alive, limits, timeouts, malformed
// input, connection bounds, hand-over from another acceptor, metrics, stop()
// and the lifetime rules. The router's own rules are in http_router_test.cpp.
#include <catch2/catch.hpp>

#include <memory>
#include <thread>
#include <vector>

// GCC 12 -Wnull-dereference false positives inside Asio (see http_api.hpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#pragma GCC diagnostic pop

#include "http/fake_client_api.hpp"
#include "http/http_test_client.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/net/http_api.hpp"

namespace nodenomad::net {
namespace {

namespace asio = boost::asio;
using testing::eventually;
using testing::FakeClientApi;
using testing::make_request;
using testing::TestClient;
using testing::TestResponse;
using Delivery = FakeClientApi::Delivery;

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Runs an HttpApi listening on 127.0.0.1:<any> with `io_threads` threads.
class ServerFixture {
 public:
  explicit ServerFixture(HttpOptions options = {}, int io_threads = 1) {
    set_log_level(LogLevel::kError);  // the refusals these tests provoke are logged
    http_ = std::make_unique<HttpApi>(io_, api_, options);
    const Status listening = http_->listen("127.0.0.1:0");
    REQUIRE(listening.is_ok());
    for (int i = 0; i < io_threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~ServerFixture() { shut_down(); }

  // What a host does: stop, let the io_context finish, then destroy.
  void shut_down() {
    if (!http_) return;
    http_->stop();
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    http_.reset();
  }

  FakeClientApi& api() { return api_; }
  HttpApi& http() { return *http_; }
  asio::io_context& io() { return io_; }
  std::uint16_t port() const { return http_->local_port(); }

 private:
  FakeClientApi api_;  // first: outlives the io_context and the HttpApi
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<HttpApi> http_;
  std::vector<std::thread> threads_;
};

std::string json_error_code(const TestResponse& response) {
  const std::string marker = R"({"error":{"code":")";
  if (!response.body.starts_with(marker)) return "<not an error: " + response.body + ">";
  const std::size_t start = marker.size();
  return response.body.substr(start, response.body.find('"', start) - start);
}

std::string all_bytes(std::size_t size) {
  std::string out;
  for (std::size_t i = 0; i < size; ++i) out.push_back(static_cast<char>(i * 7 % 256));
  return out;
}

TEST_CASE("http: key-value round trips on one keep-alive connection", "[http][api]") {
  ServerFixture f;
  TestClient client(f.port());
  REQUIRE(client.connected());
  const std::string value = all_bytes(5000);

  auto put = client.roundtrip(make_request("PUT", "/v1/kv/a%2Fb%00c?ttl=30", value));
  REQUIRE(put);
  CHECK(put->status == 200);
  CHECK(put->header("content-type") == "application/json");
  CHECK(put->body == std::string(R"({"key":"a/b\u0000c","version":1})"));
  CHECK(f.api().last_key() == std::string("a/b\0c", 5));

  auto get = client.roundtrip(make_request("GET", "/v1/kv/a%2Fb%00c"));
  REQUIRE(get);
  CHECK(get->status == 200);
  CHECK(get->body == value);
  CHECK(get->header("x-nodenomad-version") == "1");
  CHECK(get->header("x-nodenomad-expires-in-ms") == "30000");

  auto del = client.roundtrip(make_request("DELETE", "/v1/kv/a%2Fb%00c"));
  REQUIRE(del);
  CHECK(del->body == R"({"deleted":true})");
  auto missing = client.roundtrip(make_request("GET", "/v1/kv/a%2Fb%00c"));
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(json_error_code(*missing) == "not_found");

  auto wrong_method = client.roundtrip(make_request("PATCH", "/v1/kv/k", "x"));
  REQUIRE(wrong_method);
  CHECK(wrong_method->status == 405);
  CHECK(wrong_method->header("allow") == "GET, PUT, DELETE");
  auto unknown = client.roundtrip(make_request("GET", "/nowhere"));
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(json_error_code(*unknown) == "not_found");
  auto bad_key = client.roundtrip(make_request("GET", "/v1/kv/%G1"));
  REQUIRE(bad_key);
  CHECK(json_error_code(*bad_key) == "invalid_key");
  CHECK(f.http().open_connections() == 1);
}

TEST_CASE("http: answers from another thread, with two io threads", "[http][api]") {
  ServerFixture f({}, 2);
  f.api().set_delivery(Delivery::kOtherThread);
  constexpr int kClients = 4;
  constexpr int kRequestsEach = 50;
  std::vector<int> ok(kClients, 0);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      TestClient client(f.port());
      for (int i = 0; i < kRequestsEach; ++i) {
        const std::string key = "/v1/kv/c" + std::to_string(c);
        auto put = client.roundtrip(make_request("PUT", key, std::to_string(i)));
        auto get = client.roundtrip(make_request("GET", key));
        if (put && put->status == 200 && get && get->body == std::to_string(i)) ++ok[c];
      }
    });
  }
  for (auto& thread : clients) thread.join();
  for (int c = 0; c < kClients; ++c) CHECK(ok[c] == kRequestsEach);
}

TEST_CASE("http: pipelined requests and HTTP/1.0", "[http][api]") {
  ServerFixture f;
  TestClient client(f.port());
  REQUIRE(client.send(make_request("PUT", "/v1/kv/p", "1") + make_request("GET", "/v1/kv/p") +
                      make_request("GET", "/health")));
  auto first = client.read_response();
  auto second = client.read_response();
  auto third = client.read_response();
  REQUIRE((first && second && third));
  CHECK(first->body == R"({"key":"p","version":1})");
  CHECK(second->body == "1");
  CHECK(third->body == R"({"status":"ok","node":"node-1"})");

  TestClient old(f.port());
  auto response = old.roundtrip("GET /health HTTP/1.0\r\n\r\n");
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(old.wait_closed());
}

TEST_CASE("http: a connection handed over with bytes already read", "[http][api]") {
  ServerFixture f;
  // The node's single port reads the first bytes to tell peers from HTTP
  // clients, then hands HTTP connections over with what it read.
  asio::io_context side_io;
  asio::ip::tcp::acceptor acceptor(side_io, {asio::ip::make_address("127.0.0.1"), 0});
  TestClient client(acceptor.local_endpoint().port());
  REQUIRE(client.connected());
  REQUIRE(client.send(make_request("PUT", "/v1/kv/handed", "over")));
  asio::ip::tcp::socket socket(side_io);
  acceptor.accept(socket);
  std::string prefix(6, '\0');
  asio::read(socket, asio::buffer(prefix));
  CHECK(prefix == "PUT /v");
  f.http().serve(std::move(socket), prefix);

  auto put = client.read_response();
  REQUIRE(put);
  CHECK(put->status == 200);
  CHECK(put->body == R"({"key":"handed","version":1})");
  auto get = client.roundtrip(make_request("GET", "/v1/kv/handed"));  // still keep-alive
  REQUIRE(get);
  CHECK(get->body == "over");
}

TEST_CASE("http: a body over max_value_bytes is 413 and closes", "[http][api]") {
  HttpOptions options;
  options.max_value_bytes = 1024;
  ServerFixture f(options);
  SECTION("with Content-Length, body sent") {
    TestClient client(f.port());
    auto response = client.roundtrip(make_request("PUT", "/v1/kv/big", std::string(4096, 'x')));
    REQUIRE(response);
    CHECK(response->status == 413);
    CHECK(json_error_code(*response) == "value_too_large");
    CHECK(response->header("connection") == "close");
    CHECK(client.wait_closed());
  }
  SECTION("announced but not sent") {
    TestClient client(f.port());
    auto response =
        client.roundtrip("PUT /v1/kv/big HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n");
    REQUIRE(response);
    CHECK(response->status == 413);
    CHECK(client.wait_closed());
  }
  SECTION("chunked") {
    TestClient client(f.port());
    std::string request = "PUT /v1/kv/big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) request += "200\r\n" + std::string(512, 'y') + "\r\n";
    request += "0\r\n\r\n";
    auto response = client.roundtrip(request);
    REQUIRE(response);
    CHECK(response->status == 413);
    CHECK(client.wait_closed());
  }
  SECTION("Expect: 100-continue within the limit") {
    TestClient client(f.port());
    REQUIRE(
        client.send("PUT /v1/kv/c HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    auto go_on = client.read_response();
    REQUIRE(go_on);
    CHECK(go_on->status == 100);
    auto put = client.roundtrip("abc");
    REQUIRE(put);
    CHECK(put->status == 200);
  }
  CHECK(eventually([&] { return f.http().open_connections() == 0; }));
}

TEST_CASE("http: headers over max_header_bytes are 431", "[http][api]") {
  HttpOptions options;
  options.max_header_bytes = 1024;
  ServerFixture f(options);
  TestClient client(f.port());
  auto response = client.roundtrip(
      make_request("GET", "/health", "", "X-Pad: " + std::string(2000, 'p') + "\r\n"));
  REQUIRE(response);
  CHECK(response->status == 431);
  CHECK(json_error_code(*response) == "header_too_large");
  CHECK(client.wait_closed());
}

TEST_CASE("http: malformed requests get 400 and disturb no one else", "[http][api]") {
  ServerFixture f;
  TestClient bystander(f.port());
  auto before = bystander.roundtrip(make_request("PUT", "/v1/kv/b", "1"));
  REQUIRE(before);
  CHECK(before->status == 200);
  const std::vector<std::string> garbage = {
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15),  // a TLS hello
      "GARBAGE\r\n\r\n",
      "GET /health HTTP/9.9\r\n\r\n",
      "GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "PUT /v1/kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const auto& bytes : garbage) {
    INFO(bytes);
    TestClient attacker(f.port());
    auto response = attacker.roundtrip(bytes);
    REQUIRE(response);
    CHECK(response->status == 400);
    CHECK(json_error_code(*response) == "bad_request");
    CHECK(attacker.wait_closed());
  }
  auto after = bystander.roundtrip(make_request("GET", "/v1/kv/b"));
  REQUIRE(after);
  CHECK(after->body == "1");
}

TEST_CASE("http: read and idle timeouts close the connection", "[http][api]") {
  HttpOptions options;
  options.read_timeout_ms = 200;
  options.idle_timeout_ms = 200;
  ServerFixture f(options);
  TestClient silent(f.port());
  TestClient partial(f.port());
  REQUIRE(partial.send("GET /health HTTP/1.1\r\nHost: x\r\n"));
  TestClient kept_alive(f.port());
  REQUIRE(kept_alive.roundtrip(make_request("GET", "/health")));
  CHECK(silent.wait_closed());
  CHECK(partial.wait_closed());
  CHECK(kept_alive.wait_closed());
  CHECK(eventually([&] { return f.http().open_connections() == 0; }));
}

TEST_CASE("http: a request the node does not answer in time is 504", "[http][api]") {
  HttpOptions options;
  options.request_timeout_ms = 200;
  ServerFixture f(options);
  f.api().set_delivery(Delivery::kHold);
  TestClient client(f.port());
  auto response = client.roundtrip(make_request("PUT", "/v1/kv/slow", "v"));
  REQUIRE(response);
  CHECK(response->status == 504);
  CHECK(json_error_code(*response) == "timeout");
  // The late answer is dropped and the connection goes on.
  f.api().set_delivery(Delivery::kInline);
  f.api().release_held();
  auto next = client.roundtrip(make_request("GET", "/v1/kv/slow"));
  REQUIRE(next);
  CHECK(next->status == 200);
}

TEST_CASE("http: connections over max_connections are answered 503", "[http][api]") {
  HttpOptions options;
  options.max_connections = 2;
  ServerFixture f(options);
  auto first = std::make_unique<TestClient>(f.port());
  TestClient second(f.port());
  REQUIRE(first->roundtrip(make_request("GET", "/health")));
  REQUIRE(second.roundtrip(make_request("GET", "/health")));
  {
    TestClient third(f.port());
    auto refused = third.roundtrip(make_request("GET", "/health"));
    REQUIRE(refused);
    CHECK(refused->status == 503);
    CHECK(json_error_code(*refused) == "unavailable");
    CHECK(refused->header("retry-after") == "1");
    CHECK(third.wait_closed());
  }
  first.reset();
  CHECK(eventually([&] { return f.http().open_connections() == 1; }));
  TestClient fourth(f.port());
  auto served = fourth.roundtrip(make_request("GET", "/health"));
  REQUIRE(served);
  CHECK(served->status == 200);
  CHECK(contains(f.http().metrics_text(), "nodenomad_http_connections_refused_total 1\n"));
}

TEST_CASE("http: /metrics serves the node's and the HTTP layer's metrics", "[http][api]") {
  ServerFixture f;
  TestClient client(f.port());
  for (int i = 0; i < 3; ++i) REQUIRE(client.roundtrip(make_request("PUT", "/v1/kv/m", "v")));
  REQUIRE(client.roundtrip(make_request("GET", "/v1/kv/missing")));
  auto metrics = client.roundtrip(make_request("GET", "/metrics"));
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = metrics->body;
  CHECK(text.starts_with("nodenomad_fake_up 1\n"));
  CHECK(contains(
      text, R"(nodenomad_http_requests_total{route="/v1/kv/{key}",method="PUT",status="200"} 3)"));
  CHECK(contains(
      text, R"(nodenomad_http_requests_total{route="/v1/kv/{key}",method="GET",status="404"} 1)"));
  CHECK(contains(
      text, R"(nodenomad_http_request_duration_seconds_bucket{route="/v1/kv/{key}",le="+Inf"} 4)"));
  CHECK(contains(text, R"(nodenomad_http_request_duration_seconds_count{route="/v1/kv/{key}"} 4)"));
  CHECK(contains(text, "nodenomad_http_open_connections 1\n"));
}

TEST_CASE("http: migrations over a socket: start, show, throttle, cancel, drain",
          "[http][api][migration]") {
  ServerFixture f;
  f.api().set_delivery(Delivery::kOtherThread);
  TestClient client(f.port());
  REQUIRE(client.connected());

  auto created = client.roundtrip(make_request(
      "POST", "/v1/migrations", R"({"shards": [3, 7], "source": "node-1", "target": "node-4"})",
      "Content-Type: application/json\r\n"));
  REQUIRE(created);
  CHECK(created->status == 202);
  CHECK(created->header("content-type") == "application/json");
  CHECK(created->body == R"({"id":"batch-1","operations":["op-1","op-2"]})");

  auto shown = client.roundtrip(make_request("GET", "/v1/migrations/op-2"));
  REQUIRE(shown);
  CHECK(shown->status == 200);
  CHECK(contains(shown->body, R"({"id":"op-2","shard":7,"source":"node-1","target":"node-4",)"
                              R"("stage":"prepare",)"));

  auto throttled = client.roundtrip(
      make_request("PUT", "/v1/migrations/op-2/bandwidth", R"({"bytes_per_s": 4096})"));
  REQUIRE(throttled);
  CHECK(throttled->status == 200);
  CHECK(contains(throttled->body, R"("bandwidth_bytes_per_s":4096,)"));

  auto bad = client.roundtrip(make_request("POST", "/v1/migrations", R"({"shards": []})"));
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(json_error_code(*bad) == "invalid_argument");

  auto cancelled = client.roundtrip(make_request("DELETE", "/v1/migrations/op-1"));
  REQUIRE(cancelled);
  CHECK(cancelled->status == 202);
  CHECK(contains(cancelled->body, R"("stage":"cancelled")"));
  auto missing = client.roundtrip(make_request("DELETE", "/v1/migrations/op-77"));
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(json_error_code(*missing) == "not_found");

  f.api().set_planned_moves({{{ShardId(5)}, NodeId("node-2"), NodeId("node-3"), 0}});
  auto drained = client.roundtrip(make_request("DELETE", "/v1/cluster/nodes/node-2"));
  REQUIRE(drained);
  CHECK(drained->status == 202);
  CHECK(drained->body == R"({"id":"batch-2","operations":["op-3"]})");

  f.api().set_migration_status(Status::unavailable("no metadata leader"));
  auto unavailable = client.roundtrip(make_request("POST", "/v1/rebalance"));
  REQUIRE(unavailable);
  CHECK(unavailable->status == 503);
  CHECK(unavailable->header("retry-after") == "1");

  auto metrics = client.roundtrip(make_request("GET", "/metrics"));
  REQUIRE(metrics);
  CHECK(contains(metrics->body, R"(nodenomad_http_requests_total{route="/v1/migrations/{id}",)"
                                R"(method="DELETE",status="202"} 1)"));
  CHECK(contains(metrics->body, R"(nodenomad_http_requests_total{route=)"
                                R"("/v1/migrations/{id}/bandwidth",method="PUT",status="200"} 1)"));
  CHECK(f.http().open_connections() == 1);
}

TEST_CASE("http: stop() answers requests in flight and closes the rest", "[http][api]") {
  ServerFixture f;
  TestClient idle(f.port());
  REQUIRE(idle.roundtrip(make_request("GET", "/health")));
  f.api().set_delivery(Delivery::kHold);
  TestClient busy(f.port());
  REQUIRE(busy.send(make_request("PUT", "/v1/kv/inflight", "v")));
  REQUIRE(eventually([&] { return f.api().held_count() == 1; }));

  f.http().stop();
  CHECK(idle.wait_closed());
  CHECK(eventually([&] { return !TestClient(f.port()).connected(); }));
  f.api().release_held();  // from this thread, as a Node's own loop would
  auto answered = busy.read_response();
  REQUIRE(answered);
  CHECK(answered->status == 200);
  CHECK(answered->header("connection") == "close");
  CHECK(busy.wait_closed());
  CHECK(eventually([&] { return f.http().open_connections() == 0; }));
  f.http().stop();  // idempotent

  // A connection handed over after stop() is refused with a clear answer.
  asio::io_context side_io;
  asio::ip::tcp::acceptor acceptor(side_io, {asio::ip::make_address("127.0.0.1"), 0});
  TestClient late(acceptor.local_endpoint().port());
  REQUIRE(late.send(make_request("GET", "/health")));
  asio::ip::tcp::socket socket(side_io);
  acceptor.accept(socket);
  f.http().serve(std::move(socket), "");
  auto refused = late.read_response();
  REQUIRE(refused);
  CHECK(refused->status == 503);
  CHECK(late.wait_closed());
}

TEST_CASE("http: answers after the HttpApi and the io_context are gone are harmless",
          "[http][api]") {
  FakeClientApi api;
  api.set_delivery(Delivery::kHold);
  {
    auto io = std::make_unique<asio::io_context>();
    auto http = std::make_unique<HttpApi>(*io, api, HttpOptions{});
    REQUIRE(http->listen("127.0.0.1:0").is_ok());
    std::thread runner([&] { io->run(); });
    TestClient first(http->local_port());
    TestClient second(http->local_port());
    REQUIRE(first.send(make_request("PUT", "/v1/kv/a", "1")));
    REQUIRE(second.send(make_request("PUT", "/v1/kv/b", "2")));
    REQUIRE(eventually([&] { return api.held_count() == 2; }));
    io->stop();
    runner.join();
    http.reset();
    // One answer after ~HttpApi while the io_context still exists, one after
    // the io_context is gone too: both are dropped without touching either.
    CHECK(api.release_one());
    io.reset();
    CHECK(api.release_one());
  }
  SUCCEED("no crash, no use after free (run under ASan/TSan in CI)");
}

TEST_CASE("http: listen() errors name the address", "[http][api]") {
  ServerFixture f;
  FakeClientApi api;
  asio::io_context io;
  HttpApi other(io, api, {});
  const std::string taken = "127.0.0.1:" + std::to_string(f.port());
  const Status status = other.listen(taken);
  CHECK(status.is(StatusCode::kIOError));
  CHECK(contains(std::string(status.message()), taken));
  for (const char* bad : {"nonsense", "127.0.0.1", "127.0.0.1:99999", "999.0.0.1:80", "[::1:80"}) {
    INFO(bad);
    CHECK(other.listen(bad).is(StatusCode::kInvalidArgument));
  }
  CHECK(other.local_port() == 0);
}

}  // namespace
}  // namespace nodenomad::net
