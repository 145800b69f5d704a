#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {
namespace {

Result<Invocation> parse(std::vector<std::string> args,
                         std::map<std::string, std::string> env = {}) {
  // argv[0] first; (inserting it into `args` trips a GCC 12 false
  // -Wnull-dereference inside std::vector)
  std::vector<const char*> argv = {"nodenomadctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_ctl_args(static_cast<int>(argv.size()), argv.data(), env_from_map(env));
}

Invocation parse_ok(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  auto inv = parse(std::move(args), std::move(env));
  INFO(inv.status().to_string());
  REQUIRE(inv.is_ok());
  return std::move(inv).value();
}

std::string parse_error(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
  auto inv = parse(std::move(args), std::move(env));
  REQUIRE_FALSE(inv.is_ok());
  CHECK(inv.status().is(StatusCode::kInvalidArgument));
  return std::string(inv.status().message());
}

TEST_CASE("ctl: put with options before and after the command", "[server][ctl]") {
  const Invocation a = parse_ok({"put", "user:1", "alice", "--ttl", "60", "--if-version=0"});
  CHECK(a.command == Command::kPut);
  CHECK(a.key == "user:1");
  CHECK(a.value == "alice");
  CHECK_FALSE(a.value_from_stdin);
  CHECK(a.ttl_s == 60u);
  CHECK(a.if_version == 0u);
  CHECK(a.endpoint == HostPort{"127.0.0.1", 3000});
  CHECK(a.timeout_ms == kDefaultTimeoutMs);

  const Invocation b = parse_ok({"--json", "--endpoint", "10.0.0.5:3002", "put", "k", "-"});
  CHECK(b.json);
  CHECK(b.endpoint == HostPort{"10.0.0.5", 3002});
  CHECK(b.value_from_stdin);
  CHECK(b.value.empty());
}

TEST_CASE("ctl: get, del, status, cluster join", "[server][ctl]") {
  const Invocation get = parse_ok({"get", "k", "--consistency", "stale", "-v"});
  CHECK(get.command == Command::kGet);
  CHECK(get.consistency == std::optional<std::string>("stale"));
  CHECK(get.verbose);
  CHECK_FALSE(parse_ok({"get", "k"}).consistency.has_value());

  const Invocation del = parse_ok({"del", "k", "--if-version", "7"});
  CHECK(del.command == Command::kDel);
  CHECK(del.if_version == 7u);

  CHECK(parse_ok({"status", "--timeout-ms", "250"}).timeout_ms == 250u);
  CHECK(parse_ok({"status"}).command == Command::kStatus);

  const Invocation join = parse_ok({"cluster", "join", "node-4", "127.0.0.1:3003"});
  CHECK(join.command == Command::kClusterJoin);
  CHECK(join.join_id == "node-4");
  CHECK(join.join_address == "127.0.0.1:3003");
  CHECK(parse_ok({"cluster", "join", "node-6", "[::1]:3005"}).join_address == "[::1]:3005");
}

TEST_CASE("ctl: -- lets a key or value start with '-'", "[server][ctl]") {
  const Invocation inv = parse_ok({"put", "--ttl", "5", "--", "-k", "--json"});
  CHECK(inv.key == "-k");
  CHECK(inv.value == "--json");
  CHECK_FALSE(inv.json);
  CHECK(parse_error({"put", "k", "-5"}) ==
        "unknown option \"-5\"; to pass a value starting with '-', put -- before it");
}

TEST_CASE("ctl: --help wins over everything else", "[server][ctl]") {
  CHECK(parse_ok({"--help"}).command == Command::kHelp);
  CHECK(parse_ok({"put", "-h"}).command == Command::kHelp);
  CHECK(parse_ok({"bogus", "--endpoint", "nonsense", "--help"}).command == Command::kHelp);
  CHECK(parse_ok({"help"}).command == Command::kHelp);
  const std::string help = ctl_help();
  for (const char* text : {"put KEY VALUE", "get KEY", "del KEY", "status", "cluster join",
                           "--endpoint", "--json", "--timeout-ms", "NODENOMAD_ENDPOINT", "0  ok",
                           "1  not found", "2  usage", "3  version mismatch", "4  unavailable",
                           "5  outcome unknown", "6  cannot connect", "7  any other"}) {
    CHECK(help.find(text) != std::string::npos);
  }
}

TEST_CASE("ctl: the endpoint from the flag, the environment or the default", "[server][ctl]") {
  const std::map<std::string, std::string> env = {{"NODENOMAD_ENDPOINT", "node-2:3001"}};
  CHECK(parse_ok({"status"}, env).endpoint == HostPort{"node-2", 3001});
  CHECK(parse_ok({"status", "--endpoint", "h:1"}, env).endpoint == HostPort{"h", 1});
  CHECK(parse_ok({"status"}, {{"NODENOMAD_ENDPOINT", ""}}).endpoint == HostPort{"127.0.0.1", 3000});
  CHECK(parse_ok({"status", "--endpoint", "http://h:1/"}).endpoint == HostPort{"h", 1});
  CHECK(parse_error({"status", "--endpoint", "https://h:1"}) ==
        "--endpoint=\"https://h:1\": https is not supported; expected host:port");
  CHECK(parse_error({"status", "--endpoint", "h"}) ==
        "--endpoint=\"h\": not an address (no port); expected host:port (e.g. 127.0.0.1:3000, "
        "node-1:3000 or [::1]:3000)");
  CHECK(parse_error({"status"}, {{"NODENOMAD_ENDPOINT", "h:0"}}) ==
        "NODENOMAD_ENDPOINT=\"h:0\": not an address (bad port \"0\"); expected host:port (e.g. "
        "127.0.0.1:3000, node-1:3000 or [::1]:3000)");
}

TEST_CASE("ctl: usage errors say what is wrong", "[server][ctl]") {
  CHECK(parse_error({}) ==
        "no command; expected put, get, del, status or cluster join (see --help)");
  CHECK(parse_error({"fetch", "k"}) ==
        "unknown command \"fetch\"; expected put, get, del, status or cluster join");
  CHECK(parse_error({"cluster", "leave"}) ==
        "cluster: expected the subcommand join (cluster join ID HOST:PORT)");
  CHECK(parse_error({"put", "k"}) ==
        "1 argument given, 2 expected; usage: nodenomadctl put KEY VALUE|- [--ttl SECONDS] "
        "[--if-version N]");
  CHECK(parse_error({"get"}) ==
        "0 arguments given, 1 expected; usage: nodenomadctl get KEY [--consistency "
        "linearizable|lease|stale]");
  CHECK(parse_error({"del", "a", "b"}) ==
        "2 arguments given, 1 expected; usage: nodenomadctl del KEY [--if-version N]");
  CHECK(parse_error({"status", "x"}) == "1 argument given, 0 expected; usage: nodenomadctl status");
  CHECK(parse_error({"cluster", "join", "node-4"}) ==
        "1 argument given, 2 expected; usage: nodenomadctl cluster join ID HOST:PORT");
  CHECK(parse_error({"get", ""}) == "the key is empty; a key is 1 to 1024 bytes");
  CHECK(parse_error({"get", "k", "--bogus"}) == "unknown option \"--bogus\" (see --help)");
  CHECK(parse_error({"get", "k", "--json=yes"}) == "--json takes no value");
  CHECK(parse_error({"put", "k", "v", "--ttl"}) == "--ttl needs a value");
  CHECK(parse_error({"put", "k", "v", "--ttl", "--json"}) == "--ttl needs a value");
  CHECK(parse_error({"put", "k", "v", "--ttl", "1", "--ttl=2"}) == "--ttl given twice");
  CHECK(parse_error({"get", "k", "--ttl", "5"}) == "--ttl applies to put only");
  CHECK(parse_error({"get", "k", "--if-version", "5"}) ==
        "--if-version applies to put and del only");
  CHECK(parse_error({"put", "k", "v", "--consistency", "lease"}) ==
        "--consistency applies to get only");
  CHECK(parse_error({"put", "k", "v", "--ttl", "0"}) ==
        "--ttl=\"0\": out of range; expected a whole number from 1 to 4294967295");
  CHECK(parse_error({"put", "k", "v", "--ttl", "1.5"}) ==
        "--ttl=\"1.5\": not a whole number; expected a whole number from 1 to 4294967295");
  CHECK(parse_error({"del", "k", "--if-version", "x"}) ==
        "--if-version=\"x\": not a whole number; expected a whole number from 0 to "
        "18446744073709551615");
  CHECK(parse_error({"get", "k", "--consistency", "strong"}) ==
        "--consistency=\"strong\": expected linearizable, lease or stale");
  CHECK(parse_error({"status", "--timeout-ms", "0"}) ==
        "--timeout-ms=\"0\": out of range; expected a whole number from 1 to 3600000");
  CHECK(parse_error({"cluster", "join", "node 4", "h:1"}) ==
        "ID=\"node 4\": not a node id; expected 1 to 64 letters, digits, '.', '_' or '-' "
        "(e.g. node-1)");
  CHECK(parse_error({"cluster", "join", "node-4", "h"}) ==
        "ADDRESS=\"h\": not an address (no port); expected host:port (e.g. 127.0.0.1:3000, "
        "node-1:3000 or [::1]:3000)");
}

TEST_CASE("ctl: keys are percent-encoded byte by byte", "[server][ctl]") {
  CHECK(percent_encode("abcXYZ019-._~") == "abcXYZ019-._~");
  CHECK(percent_encode("a/b c?d=e&f#g%h+i") == "a%2Fb%20c%3Fd%3De%26f%23g%25h%2Bi");
  CHECK(percent_encode(std::string("\0\x01\x7f\x80\xff", 5)) == "%00%01%7F%80%FF");
  CHECK(percent_encode("\xc3\xa9") == "%C3%A9");
  CHECK(percent_encode("") == "");
}

TEST_CASE("ctl: each command's request", "[server][ctl]") {
  auto request = [](std::vector<std::string> args) {
    return build_request(parse_ok(std::move(args)));
  };

  auto put = request({"put", "a/b", "v", "--ttl", "60", "--if-version", "3"});
  CHECK(put.method == "PUT");
  CHECK(put.target == "/v1/kv/a%2Fb?ttl=60&if_version=3");
  CHECK(put.body == "v");
  CHECK(put.content_type == "application/octet-stream");
  CHECK(request({"put", "k", ""}).target == "/v1/kv/k");
  CHECK(request({"put", "k", "v", "--if-version", "0"}).target == "/v1/kv/k?if_version=0");

  auto get = request({"get", "k k"});
  CHECK(get.method == "GET");
  CHECK(get.target == "/v1/kv/k%20k");
  CHECK(get.body.empty());
  CHECK(request({"get", "k", "--consistency", "lease"}).target == "/v1/kv/k?consistency=lease");

  auto del = request({"del", "k", "--if-version", "9"});
  CHECK(del.method == "DELETE");
  CHECK(del.target == "/v1/kv/k?if_version=9");

  auto status = request({"status"});
  CHECK(status.method == "GET");
  CHECK(status.target == "/v1/cluster");

  auto join = request({"cluster", "join", "node-4", "127.0.0.1:3003"});
  CHECK(join.method == "POST");
  CHECK(join.target == "/v1/cluster/nodes");
  CHECK(join.body == R"({"id":"node-4","address":"127.0.0.1:3003"})");
  CHECK(join.content_type == "application/json");
}

TEST_CASE("ctl: base64 per RFC 4648", "[server][ctl]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::string("\xff\x00\xfe", 3)) == "/wD+");
}

}  // namespace
}  // namespace nodenomad::ctl
