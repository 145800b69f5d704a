// Bad input through the real server: malformed HTTP, oversized bodies and
// keys, bad percent-encoding, unknown routes, garbage and hostile frames on
// the peer protocol, a peer of another cluster; then the ways start-up must
// fail (a taken port, a bad setting, an unusable DATA_DIR) and a graceful
// SIGTERM. Each bad input must be answered or refused, logged at most once,
// and the node must go on serving: after each, a PUT and a GET on the same
// node succeed.
//
// One node is enough (one port serves HTTP and peers); it is its own
// one-node cluster.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "cluster/process_cluster.hpp"
#include "net/peer_frame.hpp"
#include "nodenomad/rng.hpp"
#include "support/test_seed.hpp"

namespace nodenomad::process_testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxValueBytes = 1024 * 1024;  // the default MAX_VALUE_SIZE
constexpr std::size_t kMaxKeyBytes = 1024;
constexpr auto kAnswerTimeout = 10'000ms;  // scaled: one bad request's answer or close

ClusterOptions one_node() {
  ClusterOptions options;
  options.nodes = 1;
  options.shard_count = "4";
  return options;
}

// A PUT and a GET of a fresh key on node 0, each on a new connection.
void expect_serving(ProcessCluster& cluster, const std::string& after) {
  static int round = 0;
  const std::string key = fmt::format("serving-{}", ++round);
  const std::string value = "after " + after;
  INFO("the node must still serve after: " << after);
  const HttpResult put =
      http_once(cluster.port(0), "PUT", "/v1/kv/" + key, value, scaled(kProbeTimeout));
  INFO("PUT: " << (put.reply ? std::to_string(put.reply->status) + " " + put.reply->body
                             : put.error));
  REQUIRE(put.reply.has_value());
  CHECK(put.reply->status == 200);
  const HttpResult get =
      http_once(cluster.port(0), "GET", "/v1/kv/" + key, {}, scaled(kProbeTimeout));
  INFO("GET: " << (get.reply ? std::to_string(get.reply->status) + " " + get.reply->body
                             : get.error));
  REQUIRE(get.reply.has_value());
  CHECK(get.reply->status == 200);
  CHECK(get.reply->body == value);
  cluster.require_running();
}

// What one raw exchange gave: the first response (if any), whether the
// server then closed the connection, and from which local port we spoke.
struct Exchange {
  std::optional<HttpReply> reply;
  bool closed = false;
  std::uint16_t local_port = 0;
  std::string error;
};

// Sends `bytes`, reads one HTTP response if `want_reply`, then waits for the
// server to close (when `want_close`).
Exchange exchange(std::uint16_t port, std::string_view bytes, bool want_reply, bool want_close) {
  Exchange result;
  RawSocket socket;
  const Deadline deadline = deadline_after(scaled(kAnswerTimeout));
  REQUIRE(socket.connect(port, deadline, result.error));
  result.local_port = socket.local_port();
  bool sent_any = false;
  // The server may close before taking everything (it answered early); the
  // answer is still read below.
  socket.send_all(bytes, deadline, sent_any, result.error);
  std::string buffer;
  if (want_reply) result.reply = read_http_reply(socket, buffer, deadline, result.error);
  if (want_close) result.closed = socket.wait_closed(deadline, buffer);
  return result;
}

// How many lines of the node's log name our connection ("answered 400 to
// 127.0.0.1:P: ..."): a request refused before it was read whole is logged
// once, at info.
std::size_t log_lines_about(const ProcessCluster& cluster, std::uint16_t local_port) {
  return cluster.count_log_lines(0, fmt::format("127.0.0.1:{}:", local_port));
}

void expect_error_reply(const Exchange& got, int status, const std::string& code) {
  INFO("expected " << status << " " << code << "; got "
                   << (got.reply ? std::to_string(got.reply->status) + " " + got.reply->body
                                 : got.error));
  REQUIRE(got.reply.has_value());
  CHECK(got.reply->status == status);
  CHECK(got.reply->header("content-type").value_or("") == "application/json");
  CHECK(json_error_code(got.reply->body).value_or("<not an API error>") == code);
}

std::string random_bytes(Rng& rng, std::size_t count) {
  std::string bytes(count, '\0');
  for (char& c : bytes) c = static_cast<char>(rng.uniform(256));
  return bytes;
}

// Reads the node's side of a handshake: its opening and one handshake frame.
net::Hello read_hello_answer(RawSocket& socket, Deadline deadline) {
  net::HelloReader reader;
  std::string error;
  for (;;) {
    std::string chunk;
    const RawSocket::Read read = socket.read_some(chunk, deadline, error);
    INFO("reading the node's handshake answer: " << error);
    REQUIRE(read == RawSocket::Read::kData);
    const net::HelloReader::State state = reader.feed(chunk);
    if (state == net::HelloReader::State::kNeedMore) continue;
    INFO("the node's handshake answer does not parse: " << reader.error());
    REQUIRE(state == net::HelloReader::State::kDone);
    return reader.hello();
  }
}

net::Hello hello_from(std::string cluster_id, std::string sender, std::string addressee) {
  return net::Hello{net::HelloType::kHello,
                    std::move(cluster_id),
                    NodeId(std::move(sender)),
                    NodeId(std::move(addressee)),
                    {}};
}

// Dials like a peer with `hello` (optionally another protocol version) and
// answers what the node sent back; the socket stays open for more.
net::Hello handshake(RawSocket& socket, std::uint16_t port, const net::Hello& hello,
                     std::uint8_t version = net::kPeerProtocolVersion) {
  const Deadline deadline = deadline_after(scaled(kAnswerTimeout));
  std::string error;
  REQUIRE(socket.connect(port, deadline, error));
  bool sent_any = false;
  REQUIRE(socket.send_all(net::encode_hello(hello, version), deadline, sent_any, error));
  return read_hello_answer(socket, deadline);
}

bool closes_soon(RawSocket& socket) {
  std::string ignored;
  return socket.wait_closed(deadline_after(scaled(kAnswerTimeout)), ignored);
}

std::vector<std::string> with_setting(std::vector<std::string> environment, const std::string& name,
                                      const std::string& value) {
  std::erase_if(environment,
                [&](const std::string& entry) { return entry.starts_with(name + "="); });
  environment.push_back(name + "=" + value);
  return environment;
}

// The environment of a lone node `node-1` on a free port, for processes that
// must fail before they serve.
std::vector<std::string> lone_node_environment(const ProcessCluster& cluster, std::uint64_t salt) {
  const std::uint16_t port = pick_free_port(salt);
  std::vector<std::string> environment = cluster.node_environment(0);
  environment = with_setting(std::move(environment), "NODE_PORT", std::to_string(port));
  return with_setting(std::move(environment), "CLUSTER_NODES",
                      fmt::format("node-1@127.0.0.1:{}", port));
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The log's lines at level "error"; the start-up failure must be exactly one.
std::vector<std::string> error_lines(const std::string& path) {
  std::vector<std::string> errors;
  for (const std::string& line : lines_of(path)) {
    if (line.find(R"("level":"error")") != std::string::npos) errors.push_back(line);
  }
  return errors;
}

// Request lines and bytes that are not HTTP: 400 and close.
void check_malformed_requests(ProcessCluster& cluster, Rng& rng) {
  const std::uint16_t port = cluster.port(0);
  {
    const Exchange got = exchange(port, "THIS IS NOT HTTP\r\n\r\n", true, true);
    expect_error_reply(got, 400, "bad_request");
    CHECK(got.closed);
    CHECK(log_lines_about(cluster, got.local_port) == 1);
    expect_serving(cluster, "a malformed request line");
  }
  {
    // Garbage whose first byte is not NUL is handed to HTTP: a 400, or a close.
    const std::string garbage = "\x16\x03\x01" + random_bytes(rng, 300);
    const Exchange got = exchange(port, garbage, false, true);
    CHECK(got.closed);
    CHECK(log_lines_about(cluster, got.local_port) == 1);
    expect_serving(cluster, "garbage bytes that are not NUL first");
  }
  {
    const Exchange got =
        exchange(port, make_http_request("GET", "/v1/kv/" + std::string(20'000, 'h')), true, true);
    expect_error_reply(got, 431, "header_too_large");
    CHECK(log_lines_about(cluster, got.local_port) == 1);
    expect_serving(cluster, "a request line over the header limit");
  }
}

// Bodies over MAX_VALUE_SIZE, announced, sent whole, or chunked: 413.
void check_oversized_bodies(ProcessCluster& cluster) {
  const std::uint16_t port = cluster.port(0);
  {
    const std::string head = fmt::format(
        "PUT /v1/kv/too-big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 2 * kMaxValueBytes);
    const Exchange got = exchange(port, head, true, true);  // answered before any of the body
    expect_error_reply(got, 413, "value_too_large");
    CHECK(got.closed);
    CHECK(log_lines_about(cluster, got.local_port) == 1);
    expect_serving(cluster, "a Content-Length over MAX_VALUE_SIZE");
  }
  {
    const Exchange got = exchange(
        port, make_http_request("PUT", "/v1/kv/too-big", std::string(kMaxValueBytes + 1, 'v')),
        true, true);
    expect_error_reply(got, 413, "value_too_large");
    expect_serving(cluster, "a body of MAX_VALUE_SIZE + 1 bytes");
    const HttpResult at_limit = http_once(port, "PUT", "/v1/kv/at-limit",
                                          std::string(kMaxValueBytes, 'v'), scaled(kProbeTimeout));
    REQUIRE(at_limit.reply.has_value());
    CHECK(at_limit.reply->status == 200);
  }
  {
    std::string chunked =
        "PUT /v1/kv/too-big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(64 * 1024, 'c');
    for (std::size_t sent = 0; sent <= kMaxValueBytes; sent += chunk.size()) {
      chunked += fmt::format("{:x}\r\n{}\r\n", chunk.size(), chunk);
    }
    chunked += "0\r\n\r\n";
    const Exchange got = exchange(port, chunked, true, true);
    expect_error_reply(got, 413, "value_too_large");
    expect_serving(cluster, "a chunked body over MAX_VALUE_SIZE");
  }
}

void expect_api_error(const HttpResult& got, int status, const std::string& code) {
  INFO("expected " << status << " " << code << "; got "
                   << (got.reply ? std::to_string(got.reply->status) + " " + got.reply->body
                                 : got.error));
  REQUIRE(got.reply.has_value());
  CHECK(got.reply->status == status);
  CHECK(json_error_code(got.reply->body).value_or("<not an API error>") == code);
}

// Keys at and over the limit, bad percent-encoding, an unknown route and
// method: all answered on one keep-alive connection, which stays usable.
void check_keys_and_routes(ProcessCluster& cluster) {
  HttpConnection connection(cluster.port(0), scaled(kAnswerTimeout));
  const std::string longest(kMaxKeyBytes, 'k');
  HttpResult got = connection.request("PUT", "/v1/kv/" + longest, "longest");
  REQUIRE(got.reply.has_value());
  CHECK(got.reply->status == 200);
  got = connection.request("GET", "/v1/kv/" + longest);
  REQUIRE(got.reply.has_value());
  CHECK(got.reply->body == "longest");
  for (const std::string& key :
       {std::string(kMaxKeyBytes + 1, 'k'), percent_encode(std::string(kMaxKeyBytes + 1, '/'))}) {
    expect_api_error(connection.request("PUT", "/v1/kv/" + key, "x"), 400, "invalid_key");
  }
  for (const char* target : {"/v1/kv/%G1", "/v1/kv/abc%4", "/v1/kv/%"}) {
    INFO(target);
    expect_api_error(connection.request("GET", target), 400, "invalid_key");
  }
  expect_api_error(connection.request("GET", "/v2/kv/nothing-here"), 404, "not_found");
  expect_api_error(connection.request("PATCH", "/v1/kv/k", "x"), 405, "method_not_allowed");
  got = connection.request("GET", "/v1/kv/" + longest);
  REQUIRE(got.reply.has_value());
  CHECK(got.reply->status == 200);
  expect_serving(cluster, "over-long keys, bad percent-encoding, an unknown route and method");
}

}  // namespace

TEST_CASE(
    "bad HTTP input through the real server is answered, logged at most once, and the node keeps "
    "serving",
    "[cluster][process][bad-input]") {
  const std::uint64_t seed = test_support::test_seed("cluster bad HTTP input", 0x62616468);
  Rng rng(seed);
  ProcessCluster cluster(one_node());
  cluster.start();

  check_malformed_requests(cluster, rng);
  check_oversized_bodies(cluster);
  check_keys_and_routes(cluster);
  {
    // A client stuck halfway through a request does not hold up the others.
    RawSocket stuck;
    std::string error;
    REQUIRE(stuck.connect(cluster.port(0), deadline_after(scaled(kAnswerTimeout)), error));
    bool sent_any = false;
    REQUIRE(stuck.send_all("PUT /v1/kv/stuck HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
                           deadline_after(scaled(kAnswerTimeout)), sent_any, error));
    expect_serving(cluster, "while another client is stuck halfway through its request");
  }
  cluster.require_running();
  CHECK(cluster.terminate(0).describe() == "exit 0");
}

TEST_CASE("bad peer-protocol input is refused, logged once, and the node keeps serving",
          "[cluster][process][bad-input]") {
  const std::uint64_t seed = test_support::test_seed("cluster bad peer input", 0x62616470);
  Rng rng(seed);
  ProcessCluster cluster(one_node());
  cluster.start();
  const std::uint16_t port = cluster.port(0);
  const std::string not_a_peer = "closing a connection from 127.0.0.1";

  SECTION("garbage after a NUL byte, and a handshake frame claiming a huge length") {
    for (int round = 0; round < 2; ++round) {
      const Exchange got =
          exchange(port, std::string(1, '\0') + random_bytes(rng, 200), false, true);
      CHECK(got.closed);
      expect_serving(cluster, "garbage after a NUL byte");
    }
    std::string huge_hello;
    net::encode_opening(huge_hello);
    huge_hello += net::encode_frame_header(0xFFFF'FF00U, 0);
    const Exchange got = exchange(port, huge_hello, false, true);
    CHECK(got.closed);
    expect_serving(cluster, "a handshake frame claiming 4 GiB");
    // All from 127.0.0.1 for the same reason: one line.
    CHECK(cluster.count_log_lines(0, not_a_peer) == 1);
  }
  SECTION("after a valid handshake, a frame claiming a huge length, and one failing its checksum") {
    RawSocket peer;
    const net::Hello welcome = handshake(peer, port, hello_from("nodenomad", "intruder", "node-1"));
    CHECK(welcome.type == net::HelloType::kWelcome);
    bool sent_any = false;
    std::string error;
    REQUIRE(peer.send_all(net::encode_frame_header(0x4000'0000U, 0),
                          deadline_after(scaled(kAnswerTimeout)), sent_any, error));
    CHECK(closes_soon(peer));
    expect_serving(cluster, "a frame claiming 1 GiB");
    CHECK(cluster.count_log_lines(0, "a frame claims") == 1);

    RawSocket second;
    CHECK(handshake(second, port, hello_from("nodenomad", "intruder-2", "node-1")).type ==
          net::HelloType::kWelcome);
    std::string damaged = net::encode_frame("payload");
    damaged.back() ^= 0x01;
    REQUIRE(second.send_all(damaged, deadline_after(scaled(kAnswerTimeout)), sent_any, error));
    CHECK(closes_soon(second));
    expect_serving(cluster, "a frame failing its checksum");
    CHECK(cluster.count_log_lines(0, "fails its checksum") == 1);
  }
  SECTION(
      "a peer of another cluster, to another node id, or of another version is refused with the "
      "reason") {
    for (int round = 0; round < 2; ++round) {
      RawSocket peer;
      const net::Hello answer =
          handshake(peer, port, hello_from("other-cluster", "stranger", "node-1"));
      CHECK(answer.type == net::HelloType::kRefusal);
      CHECK_THAT(answer.reason, Catch::Contains("belongs to cluster 'other-cluster'"));
      CHECK(closes_soon(peer));
      expect_serving(cluster, "a hello of another cluster");
    }
    CHECK(cluster.count_log_lines(0, "belongs to cluster 'other-cluster'") == 1);

    RawSocket misdialed;
    const net::Hello answer =
        handshake(misdialed, port, hello_from("nodenomad", "stranger", "node-7"));
    CHECK(answer.type == net::HelloType::kRefusal);
    CHECK_THAT(answer.reason, Catch::Contains("dialed node 'node-7'"));
    CHECK(closes_soon(misdialed));

    RawSocket future;
    const net::Hello refusal =
        handshake(future, port, hello_from("nodenomad", "future", "node-1"), 2);
    CHECK(refusal.type == net::HelloType::kRefusal);
    CHECK_THAT(refusal.reason, Catch::Contains("protocol version 2"));
    CHECK(closes_soon(future));
    expect_serving(cluster, "a hello to another node id and one of another version");
    CHECK(cluster.count_log_lines(0, "dialed node 'node-7'") == 1);
    CHECK(cluster.count_log_lines(0, "protocol version 2") == 1);
  }
  cluster.require_running();
  CHECK(cluster.terminate(0).describe() == "exit 0");
}

TEST_CASE(
    "start-up fails with one clear line on a taken port, a bad setting or an unusable DATA_DIR, "
    "and SIGTERM exits 0",
    "[cluster][process][bad-input]") {
  ProcessCluster cluster(one_node());
  cluster.start();
  const std::string dir = cluster.temp_dir();

  SECTION("a second process on a taken port exits 1 with one error line naming the port") {
    const std::string log = dir + "/taken-port.log";
    const ExitStatus exit = run_server_to_exit(
        with_setting(cluster.node_environment(0), "DATA_DIR", dir + "/second-data"), log,
        scaled(kReadyTimeout));
    CHECK(exit.describe() == "exit 1");
    const std::vector<std::string> errors = error_lines(log);
    INFO(fmt::format("{}", fmt::join(lines_of(log), "\n")));
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Catch::Contains(std::to_string(cluster.port(0))) &&
                              Catch::Contains("Address already in use"));
  }
  SECTION("MAX_WAL_SIZE=12XB exits 2 with one line naming the variable") {
    const std::string log = dir + "/bad-setting.log";
    const ExitStatus exit =
        run_server_to_exit(with_setting(lone_node_environment(cluster, 1), "MAX_WAL_SIZE", "12XB"),
                           log, scaled(kReadyTimeout));
    CHECK(exit.describe() == "exit 2");
    const std::vector<std::string> lines = lines_of(log);
    INFO(fmt::format("{}", fmt::join(lines, "\n")));
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains("MAX_WAL_SIZE") && Catch::Contains("12XB"));
  }
  SECTION("a DATA_DIR under a regular file exits 1 with one error line naming it") {
    const std::string file = dir + "/a-regular-file";
    std::ofstream(file) << "not a directory\n";
    const std::string log = dir + "/data-under-file.log";
    const ExitStatus exit = run_server_to_exit(
        with_setting(lone_node_environment(cluster, 2), "DATA_DIR", file + "/data"), log,
        scaled(kReadyTimeout));
    CHECK(exit.describe() == "exit 1");
    const std::vector<std::string> errors = error_lines(log);
    INFO(fmt::format("{}", fmt::join(lines_of(log), "\n")));
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Catch::Contains("a-regular-file"));
  }
  SECTION("an unreadable DATA_DIR exits 1 with one error line naming it (not as root)") {
    if (::geteuid() == 0) {
      WARN("running as root: directory permissions do not apply; nothing to check");
      return;
    }
    const std::string locked = dir + "/locked";
    std::filesystem::create_directories(locked + "/data");
    ::chmod(locked.c_str(), 0);
    const std::string log = dir + "/locked-data.log";
    const ExitStatus exit = run_server_to_exit(
        with_setting(lone_node_environment(cluster, 3), "DATA_DIR", locked + "/data"), log,
        scaled(kReadyTimeout));
    ::chmod(locked.c_str(), 0755);
    CHECK(exit.describe() == "exit 1");
    const std::vector<std::string> errors = error_lines(log);
    INFO(fmt::format("{}", fmt::join(lines_of(log), "\n")));
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Catch::Contains("locked"));
  }
  expect_serving(cluster, "other processes failed to start beside it");
  CHECK(cluster.terminate(0).describe() == "exit 0");
  CHECK(cluster.count_log_lines(0, "stopped (exit 0)") == 1);
}

}  // namespace nodenomad::process_testing
