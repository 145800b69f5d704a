// nodenomad-node: one NodeNomad node per process. Configuration comes from
// flags, environment variables and an optional config file
// (docs/configuration.md); logs are JSON lines on stderr.
//
// One port (NODE_PORT) serves both the peers' protocol and the HTTP API of
// API.md: AsioTransport reads the first bytes of each connection and hands
// HTTP clients to HttpApi. The node, the transport and the HTTP server share
// one io_context on one thread (DESIGN.md section 5); the disk thread is the
// node's own.
//
// Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 1 when the node
// cannot start (a taken port, an unreadable data directory, a cluster that
// cannot be joined) or stops after a disk failure, 2 for a bad configuration.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#pragma GCC diagnostic pop

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "nodenomad/logging.hpp"
#include "nodenomad/net/asio_event_loop.hpp"
#include "nodenomad/net/asio_transport.hpp"
#include "nodenomad/net/http_api.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/server/json_log.hpp"
#include "nodenomad/server/node_config.hpp"
#include "nodenomadctl/http_client.hpp"

using namespace nodenomad;
namespace asio = boost::asio;

namespace {

constexpr std::uint64_t kJoinTimeoutMs = 60'000;
constexpr std::uint64_t kDrainTimeoutMs = 3'000;

void log_info(const std::string& message) { nodenomad::log(LogLevel::kInfo, "server", message); }

// Asks a running member for the cluster's members (GET /v1/cluster), so
// this node can reach them, then asks to be added (POST /v1/cluster/nodes;
// a member that was added already answers 201 or 409 alike).
Result<std::vector<NodeMember>> join_cluster(const NodeConfig& config, const std::string& self) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kJoinTimeoutMs);
  std::string last_error = "no attempt";
  while (std::chrono::steady_clock::now() < deadline) {
    const ctl::HttpResult add = ctl::http_request(
        *config.join,
        {"POST", "/v1/cluster/nodes",
         fmt::format(R"({{"id": "{}", "address": "{}"}})", config.node_id.str(), self),
         "application/json"},
        5'000);
    const ctl::HttpResult info =
        ctl::http_request(*config.join, {"GET", "/v1/cluster", "", ""}, 5'000);
    if (add.reply && (add.reply->status == 201 || add.reply->status == 409) && info.reply &&
        info.reply->status == 200) {
      boost::system::error_code ec;
      const boost::json::value doc = boost::json::parse(info.reply->body, ec);
      if (!ec && doc.is_object() && doc.as_object().contains("nodes")) {
        std::vector<NodeMember> members;
        for (const boost::json::value& n : doc.at("nodes").as_array()) {
          members.push_back({NodeId(std::string(n.at("id").as_string())),
                             std::string(n.at("address").as_string())});
        }
        return members;
      }
      last_error = "GET /v1/cluster answered something that is not the cluster's JSON";
    } else {
      last_error = !add.reply ? add.detail
                   : add.reply->status != 201 && add.reply->status != 409
                       ? fmt::format("POST /v1/cluster/nodes answered {}: {}", add.reply->status,
                                     add.reply->body)
                       : (info.reply ? fmt::format("GET /v1/cluster answered {}", info.reply->status)
                                     : info.detail);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // between join attempts
  }
  return Status::unavailable(fmt::format("cannot join the cluster at {}: {}",
                                         config.join->to_string(), last_error));
}

// The local IP address this machine would use to reach `to`: connecting a
// UDP socket sends nothing but picks the route (and so the source address).
std::string local_address_towards(const HostPort& to) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(to.host.c_str(), std::to_string(to.port).c_str(), &hints, &found) != 0) {
    return "127.0.0.1";
  }
  std::string out = "127.0.0.1";
  const int fd = ::socket(found->ai_family, SOCK_DGRAM, 0);
  sockaddr_storage local{};
  socklen_t length = sizeof local;
  char text[INET6_ADDRSTRLEN] = {};
  if (fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
    const void* ip = local.ss_family == AF_INET6
                         ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                         : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
    if (::inet_ntop(local.ss_family, ip, text, sizeof text) != nullptr) {
      out = local.ss_family == AF_INET6 ? fmt::format("[{}]", text) : std::string(text);
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(found);
  return out;
}

int fail(const std::string& message, int code) {
  nodenomad::log(LogLevel::kError, "server", message);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (node_config_help_requested(argc, argv)) {
    std::fputs(node_config_help("nodenomad-node").c_str(), stdout);
    return 0;
  }
  Result<NodeConfig> loaded = load_node_config(argc, argv, process_env());
  if (!loaded.is_ok()) {
    std::fprintf(stderr, "nodenomad-node: %s\n", std::string(loaded.status().message()).c_str());
    return 2;
  }
  const NodeConfig config = std::move(*loaded);
  set_log_sink(make_json_log_sink(config.node_id.str()));
  set_log_level(config.log_level);
  for (const std::string& line : describe_node_config(config)) log_info("config " + line);

  const ClusterMember* self = config.self();
  // How peers reach this node: its CLUSTER_NODES entry; else, joining, the
  // address this machine uses towards the member it joins through.
  const bool wildcard = config.bind_host == "0.0.0.0" || config.bind_host == "::";
  const std::string advertise =
      self != nullptr ? self->address()
      : config.join && wildcard
          ? fmt::format("{}:{}", local_address_towards(*config.join), config.node_port)
          : fmt::format("{}:{}", config.bind_host, config.node_port);
  NodeOptions options;
  options.id = config.node_id;
  options.cluster_id = config.cluster_id;
  options.data_dir = config.data_dir;
  options.wal_dir = config.wal_dir;
  options.shard_count = config.shard_count;
  options.replication_factor = config.replication_factor;
  options.max_value_bytes = static_cast<std::uint32_t>(config.max_value_bytes);
  options.request_timeout_ms = config.request_timeout_ms;
  options.max_concurrent_migrations = config.max_concurrent_migrations;
  options.max_node_migrations = config.max_node_migrations;
  options.migration_chunk_bytes = config.migration_chunk_bytes;
  options.migration_timeout_ms = config.migration_timeout_ms;
  options.maintenance_interval_ms = config.maintenance_interval_ms;
  options.migration_bandwidth_bytes_per_s = config.migration_bandwidth_bytes_per_s;
  options.advertise_address = advertise;
  for (const ClusterMember& m : config.cluster_nodes) options.initial_members.push_back({m.id, m.address()});
  const bool restarting = std::filesystem::exists(config.data_dir + "/NODENOMAD");
  if (config.join && !restarting) {
    Result<std::vector<NodeMember>> members = join_cluster(config, advertise);
    if (!members.is_ok()) return fail(std::string(members.status().message()), 1);
    options.initial_members = std::move(*members);
    options.join = true;
  } else if (config.join) {
    options.join = true;  // a restart: the data directory knows the cluster
  }

  asio::io_context io;
  net::AsioEventLoop loop(io);
  net::AsioTransportOptions transport_options;
  transport_options.self = config.node_id;
  transport_options.cluster_id = config.cluster_id;
  transport_options.listen_address = fmt::format("{}:{}", config.bind_host, config.node_port);
  transport_options.compress_snapshot_chunks = config.snapshot_compression;
  net::AsioTransport transport(io, transport_options);
  std::unique_ptr<net::HttpApi> http;
  transport.set_foreign_connection_handler(
      [&http](asio::ip::tcp::socket socket, std::string already_read) {
        if (http) http->serve(std::move(socket), std::move(already_read));
      });
  options.transport = &transport;
  options.loop = &loop;

  Result<std::unique_ptr<Node>> opened = Node::open(options);
  if (!opened.is_ok()) {
    return fail(fmt::format("cannot start: {}", opened.status().to_string()), 1);
  }
  std::unique_ptr<Node> node = std::move(*opened);
  net::HttpOptions http_options;
  http_options.max_value_bytes = config.max_value_bytes;
  http_options.max_connections = config.max_connections;
  http_options.request_timeout_ms = static_cast<std::uint32_t>(config.request_timeout_ms + 1'000);
  http_options.idle_timeout_ms = static_cast<std::uint32_t>(config.http_idle_timeout_ms);
  http = std::make_unique<net::HttpApi>(io, *node, http_options);
  log_info(fmt::format("serving peers and HTTP on {}:{} (cluster {})", config.bind_host,
                       config.node_port, config.cluster_id));

  // Graceful stop: no new connections or requests; requests in flight are
  // answered (applied, or "not applied" / "outcome unknown"); connections
  // drain for up to kDrainTimeoutMs; then the loop ends.
  int exit_code = 0;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer drain(io);
  std::function<void(std::chrono::steady_clock::time_point)> wait_drained =
      [&](std::chrono::steady_clock::time_point until) {
        if (http->open_connections() == 0 || std::chrono::steady_clock::now() >= until) {
          io.stop();
          return;
        }
        drain.expires_after(std::chrono::milliseconds(20));
        drain.async_wait([&, until](const boost::system::error_code&) { wait_drained(until); });
      };
  auto shut_down = [&](const std::string& why) {
    log_info("stopping: " + why);
    signals.cancel();
    http->stop();
    node->stop();
    wait_drained(std::chrono::steady_clock::now() + std::chrono::milliseconds(kDrainTimeoutMs));
  };
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (!ec) shut_down(fmt::format("signal {}", signal_number));
  });
  // A disk failure stops the node for good; the process then exits 1.
  asio::steady_timer health(io);
  std::function<void()> check_health = [&] {
    if (!node->failure().is_ok()) {
      exit_code = 1;
      shut_down("the node failed: " + node->failure().to_string());
      return;
    }
    health.expires_after(std::chrono::milliseconds(200));
    health.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_health();
    });
  };
  check_health();
  io.run();
  health.cancel();
  http.reset();
  node.reset();
  log_info(fmt::format("stopped (exit {})", exit_code));
  return exit_code;
}
