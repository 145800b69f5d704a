// The migration commands over a real socket: nodenomadctl's Beast client
// (http_client.cpp) against HttpApi over a FakeClientApi on loopback. The
// operations move along at each of the command's sleeps, which are not
// slept: nothing here waits on time.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <thread>

// GCC 12 -Wnull-dereference false positives inside Asio (see http_api.hpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#pragma GCC diagnostic pop

#include "http/fake_client_api.hpp"
#include "http_client.hpp"
#include "load_cli.hpp"
#include "migrate_cli.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/net/http_api.hpp"

namespace nodenomad::ctl {
namespace {

namespace asio = boost::asio;

// An HttpApi on 127.0.0.1:<any>, served by one thread.
class Server {
 public:
  explicit Server(net::HttpOptions options = {}) {
    set_log_level(LogLevel::kError);
    http_ = std::make_unique<net::HttpApi>(io_, api_, options);
    REQUIRE(http_->listen("127.0.0.1:0").is_ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Server() {
    http_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
    http_.reset();
  }
  net::testing::FakeClientApi& api() { return api_; }
  std::uint16_t port() const { return http_->local_port(); }
  std::size_t open_connections() const { return http_->open_connections(); }

 private:
  net::testing::FakeClientApi api_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<net::HttpApi> http_;
  std::thread thread_;
};

MigrateInvocation invocation(std::vector<std::string> args, std::uint16_t port) {
  args.push_back("--endpoint=127.0.0.1:" + std::to_string(port));
  std::vector<const char*> argv = {"nodenomadctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  auto inv = parse_migrate_args(static_cast<int>(argv.size()), argv.data(), env_from_map({}));
  REQUIRE(inv.is_ok());
  return std::move(inv).value();
}

struct SocketIo {
  std::string out;
  std::string err;
  std::vector<std::uint64_t> sleeps;
  std::function<void()> on_sleep;

  CtlIo io(const MigrateInvocation& inv) {
    CtlIo io;
    io.exchange = [endpoint = inv.globals.endpoint](const HttpRequestSpec& request) {
      return http_request(endpoint, request, 10'000);
    };
    io.sleep_ms = [this](std::uint64_t ms) {
      sleeps.push_back(ms);
      if (on_sleep) on_sleep();
    };
    io.now_ms = [] { return std::uint64_t{1'764'151'200'000}; };
    io.out = [this](std::string_view text) { out += text; };
    io.err = [this](std::string_view text) { err += text; };
    return io;
  }
};

TEST_CASE("ctl socket: migrate over HTTP follows its operations to done",
          "[ctl][migrate][socket]") {
  Server server;
  SocketIo s;
  s.on_sleep = [&] {
    for (const char* id : {"op-1", "op-2"}) {
      REQUIRE(server.api().update_migration(id, [](MigrationStatus& op) {
        op.stage = MigrationStage::kDone;
        op.progress.percent = 100;
        op.stage_ms = {1000, 0, 0, 0, 0};
      }));
    }
  };
  const MigrateInvocation inv = invocation(
      {"migrate", "--shards", "3,7", "--from", "node-1", "--to", "node-4", "--bandwidth", "1MB"},
      server.port());
  CtlIo io = s.io(inv);
  CHECK(run_migrate_command(inv, io) == kExitOk);
  INFO(s.err);
  CHECK(s.out ==
        "batch batch-1: 2 operations started\n"
        "op-1  shard 3  node-1 -> node-4  prepare  0%  -  ETA -\n"
        "op-2  shard 7  node-1 -> node-4  prepare  0%  -  ETA -\n"
        "op-1  shard 3  node-1 -> node-4  done  100%  in 1.0s\n"
        "op-2  shard 7  node-1 -> node-4  done  100%  in 1.0s\n"
        "2 of 2 operations done\n");
  CHECK(s.sleeps.size() == 1);
  CHECK(server.api().last_migration_request()->bandwidth_bytes_per_s == 1 << 20);

  // The controls, with and without a body, and an error answer.
  const MigrateInvocation bandwidth = invocation({"bandwidth", "op-2", "2MB"}, server.port());
  CtlIo io2 = s.io(bandwidth);
  CHECK(run_migrate_command(bandwidth, io2) == kExitUsage);  // op-2 has ended: 400
  CHECK_THAT(s.err, Catch::Contains("invalid_argument: operation op-2 has ended (done)"));
  const MigrateInvocation show = invocation({"migration", "op-1", "--json"}, server.port());
  s.out.clear();
  CtlIo io3 = s.io(show);
  CHECK(run_migrate_command(show, io3) == kExitOk);
  CHECK(s.out.starts_with(R"({"id":"op-1","shard":3,)"));
}

TEST_CASE("ctl socket: nothing listening is exit 6, nothing sent", "[ctl][migrate][socket]") {
  // A port bound but not listening: connecting is refused, and no one else
  // can take the port meanwhile.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  SocketIo s;
  const MigrateInvocation inv = invocation({"rebalance"}, ntohs(address.sin_port));
  CtlIo io = s.io(inv);
  CHECK(run_migrate_command(inv, io) == kExitCannotConnect);
  CHECK_THAT(s.err, Catch::Contains("nothing was sent"));
  CHECK(s.sleeps.empty());
  ::close(fd);
}

TEST_CASE("ctl socket: an HttpSession keeps one connection, and opens another once the node "
          "closed it", "[ctl][load][socket]") {
  net::HttpOptions options;
  options.idle_timeout_ms = 100;  // the node closes an idle connection soon
  Server server(options);
  const HostPort endpoint{"127.0.0.1", server.port()};
  HttpSession session(endpoint, 10'000);
  const HttpResult put = session.request({"PUT", "/v1/kv/k", "v1", "application/octet-stream"});
  REQUIRE(put.reply.has_value());
  CHECK(put.reply->status == 200);
  const HttpResult get = session.request({"GET", "/v1/kv/k", "", ""});
  REQUIRE(get.reply.has_value());
  CHECK(get.reply->body == "v1");
  CHECK(server.open_connections() == 1);  // both on the same connection

  // The node closes the idle connection; the next request must not be
  // mistaken for one without an answer: the session sees the close first.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  INFO("waited 10 s for the node to close the idle connection (idle_timeout_ms 100)");
  REQUIRE(server.open_connections() == 0);
  const HttpResult again = session.request({"PUT", "/v1/kv/k", "v2", "application/octet-stream"});
  INFO(again.detail);
  REQUIRE(again.reply.has_value());
  CHECK(again.reply->status == 200);
}

TEST_CASE("ctl socket: load's loop over a real connection counts every answer",
          "[ctl][load][socket]") {
  Server server;
  HttpSession session({"127.0.0.1", server.port()}, 10'000);
  LoadOptions options;
  options.rate_per_s = 1000;
  options.connections = 1;
  options.duration_ms = 20;  // 20 writes on the fake clock below
  options.keys = 5;
  std::uint64_t now_us = 0;
  LoadIo io;
  io.exchange = [&](const HttpRequestSpec& spec) {
    now_us += 100;  // each answer "takes" 100 us of the fake clock
    return session.request(spec);
  };
  io.now_us = [&] { return now_us; };
  io.sleep_until_us = [&](std::uint64_t until) { now_us = std::max(now_us, until); };
  const LoadTally tally = run_load_worker(options, 0, 0, io);
  CHECK(tally.sent == 20);
  CHECK(tally.ok == 20);
  CHECK(tally.reasons.empty());
  CHECK(server.open_connections() == 1);
  const HttpResult last = session.request({"GET", "/v1/kv/load-4", "", ""});
  REQUIRE(last.reply.has_value());
  CHECK(last.reply->body.starts_with("nodenomadctl-load-19"));  // the last write of key 4

  server.api().set_kv_status(Status::unavailable("no leader"));
  options.duration_ms = 3;
  now_us = 0;
  const LoadTally refused = run_load_worker(options, 0, 0, io);
  CHECK(refused.sent == 3);
  CHECK(refused.not_applied == 3);
  CHECK(refused.reasons == std::map<std::string, std::uint64_t>{{"503", 3}});
}

}  // namespace
}  // namespace nodenomad::ctl
