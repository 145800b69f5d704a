#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {
namespace {

Invocation invocation(std::vector<std::string> args) {
  // argv[0] first; (inserting it into `args` trips a GCC 12 false
  // -Wnull-dereference inside std::vector)
  std::vector<const char*> argv = {"nodenomadctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  auto inv = parse_ctl_args(static_cast<int>(argv.size()), argv.data(), env_from_map({}));
  REQUIRE(inv.is_ok());
  return std::move(inv).value();
}

HttpReply reply(unsigned status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

boost::json::object parse_json(const std::string& text) {
  INFO(text);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  REQUIRE(!ec);
  REQUIRE(value.is_object());
  return value.as_object();
}

TEST_CASE("ctl: exit codes from HTTP statuses", "[server][ctl]") {
  CHECK(exit_code_for_http_status(200) == kExitOk);
  CHECK(exit_code_for_http_status(201) == kExitOk);
  CHECK(exit_code_for_http_status(202) == kExitOk);
  CHECK(exit_code_for_http_status(204) == kExitOk);
  CHECK(exit_code_for_http_status(404) == kExitNotFound);
  CHECK(exit_code_for_http_status(400) == kExitUsage);
  CHECK(exit_code_for_http_status(413) == kExitUsage);
  CHECK(exit_code_for_http_status(412) == kExitVersionMismatch);
  CHECK(exit_code_for_http_status(503) == kExitUnavailable);
  CHECK(exit_code_for_http_status(504) == kExitUnknownOutcome);
  for (const unsigned other : {301u, 405u, 409u, 500u, 501u, 502u, 100u, 0u}) {
    CHECK(exit_code_for_http_status(other) == kExitOther);
  }
  CHECK(kExitCannotConnect == 6);
}

TEST_CASE("ctl: put prints the new version", "[server][ctl]") {
  const auto plain =
      render_reply(invocation({"put", "k", "v"}), reply(200, R"({"key":"k","version":7})"));
  CHECK(plain.exit_code == kExitOk);
  CHECK(plain.out == "OK (version 7)\n");
  CHECK(plain.err.empty());
  const auto json = render_reply(invocation({"put", "k", "v", "--json"}),
                                 reply(200, R"({"key":"k","version":7})"));
  CHECK(json.out == "{\"key\":\"k\",\"version\":7}\n");
  const auto odd = render_reply(invocation({"put", "k", "v"}), reply(200, "OK"));
  CHECK(odd.exit_code == kExitOther);
  CHECK(odd.err ==
        "nodenomadctl: bad reply from 127.0.0.1:3000: HTTP 200 with an unexpected body: OK\n");
}

TEST_CASE("ctl: get prints the raw value, metadata only when asked", "[server][ctl]") {
  HttpReply r = reply(200, std::string("bin\0\xff\n", 6));
  r.version_header = "12";
  r.expires_in_header = "5000";
  const auto plain = render_reply(invocation({"get", "k"}), r);
  CHECK(plain.exit_code == kExitOk);
  CHECK(plain.out == std::string("bin\0\xff\n", 6));
  CHECK(plain.err.empty());
  const auto verbose = render_reply(invocation({"get", "k", "--verbose"}), r);
  CHECK(verbose.out == plain.out);
  CHECK(verbose.err == "version 12\nexpires in 5000 ms\n");

  const auto json = parse_json(render_reply(invocation({"get", "k", "--json"}), r).out);
  CHECK(json.at("key").as_string() == "k");
  CHECK(json.at("value_base64").as_string() == "YmluAP8K");
  CHECK(json.count("value") == 0);
  CHECK(json.at("version").to_number<std::uint64_t>() == 12u);
  CHECK(json.at("expires_in_ms").to_number<std::uint64_t>() == 5000u);

  HttpReply text = reply(200, "caf\xc3\xa9 \"quoted\"");
  text.version_header = "bogus";
  const auto text_json = parse_json(render_reply(invocation({"get", "\xff", "--json"}), text).out);
  CHECK(text_json.at("value").as_string() == "caf\xc3\xa9 \"quoted\"");
  CHECK(text_json.at("key_base64").as_string() == "/w==");
  CHECK(text_json.count("version") == 0);
}

TEST_CASE("ctl: a missing key exits 1", "[server][ctl]") {
  const std::string not_found = R"({"error":{"code":"not_found","message":"no key \"k\""}})";
  const auto get = render_reply(invocation({"get", "k"}), reply(404, not_found));
  CHECK(get.exit_code == kExitNotFound);
  CHECK(get.out.empty());
  CHECK(get.err == "nodenomadctl: not_found: no key \"k\"\n");
  const auto get_json = render_reply(invocation({"get", "k", "--json"}), reply(404, not_found));
  CHECK(get_json.out == not_found + "\n");

  const auto del = render_reply(invocation({"del", "k"}), reply(200, R"({"deleted":false})"));
  CHECK(del.exit_code == kExitNotFound);
  CHECK(del.out.empty());
  CHECK(del.err == "nodenomadctl: not_found: no key \"k\"\n");
  const auto del_json =
      render_reply(invocation({"del", "k", "--json"}), reply(200, R"({"deleted":false})"));
  CHECK(del_json.exit_code == kExitNotFound);
  CHECK(del_json.out == "{\"deleted\":false}\n");

  const auto deleted = render_reply(invocation({"del", "k"}), reply(200, R"({"deleted":true})"));
  CHECK(deleted.exit_code == kExitOk);
  CHECK(deleted.out == "deleted\n");
  CHECK(render_reply(invocation({"del", "k"}), reply(200, "{}")).exit_code == kExitOther);
}

TEST_CASE("ctl: server errors keep their code, message and hint", "[server][ctl]") {
  const auto mismatch = render_reply(
      invocation({"put", "k", "v", "--if-version", "3"}),
      reply(
          412,
          R"({"error":{"code":"version_mismatch","message":"if_version 3 did not match"},"current_version":5})"));
  CHECK(mismatch.exit_code == kExitVersionMismatch);
  CHECK(mismatch.err ==
        "nodenomadctl: version_mismatch: if_version 3 did not match (current version 5)\n");

  const auto unavailable = render_reply(
      invocation({"put", "k", "v"}),
      reply(503, R"({"error":{"code":"unavailable","message":"no quorum for shard 3"}})"));
  CHECK(unavailable.exit_code == kExitUnavailable);
  CHECK(unavailable.err ==
        "nodenomadctl: unavailable: no quorum for shard 3; not applied, safe to retry\n");

  const auto timeout =
      render_reply(invocation({"del", "k"}),
                   reply(504, R"({"error":{"code":"timeout","message":"no commit in 5s"}})"));
  CHECK(timeout.exit_code == kExitUnknownOutcome);
  CHECK(timeout.err ==
        "nodenomadctl: timeout: no commit in 5s; the outcome is unknown: the "
        "write may or may not have been applied\n");

  const auto bad_key = render_reply(
      invocation({"get", "k"}),
      reply(400, R"({"error":{"code":"invalid_key","message":"a key is 1 to 1024 bytes"}})"));
  CHECK(bad_key.exit_code == kExitUsage);
  const auto too_large = render_reply(invocation({"put", "k", "v"}), reply(413, "{}"));
  CHECK(too_large.exit_code == kExitUsage);
  CHECK(too_large.err == "nodenomadctl: http_413: {}\n");
}

TEST_CASE("ctl: a non-JSON error body is shown safely", "[server][ctl]") {
  const auto plain = render_reply(invocation({"status"}), reply(502, "Bad \x1b[31mGateway"));
  CHECK(plain.exit_code == kExitOther);
  CHECK(plain.err == "nodenomadctl: http_502: Bad ?[31mGateway\n");
  const auto json = render_reply(invocation({"status", "--json"}), reply(500, "oops\n"));
  const auto object = parse_json(json.out);
  CHECK(object.at("error").at("code").as_string() == "http_500");
  CHECK(object.at("error").at("message").as_string() == "oops?");
  const auto long_body = render_reply(invocation({"status"}), reply(500, std::string(1000, 'x')));
  CHECK(long_body.err.size() < 300);
}

TEST_CASE("ctl: status and join", "[server][ctl]") {
  const std::string cluster = R"({"cluster_id":"c","nodes":[],"shards":[]})";
  const auto json = render_reply(invocation({"status", "--json"}), reply(200, cluster));
  CHECK(json.out == cluster + "\n");
  const auto table = render_reply(invocation({"status"}), reply(200, cluster));
  CHECK(table.out.substr(0, 10) == "cluster c,");
  CHECK(render_reply(invocation({"status"}), reply(200, "[1]")).exit_code == kExitOther);

  const auto join =
      render_reply(invocation({"cluster", "join", "node-4", "h:3003"}), reply(201, ""));
  CHECK(join.exit_code == kExitOk);
  CHECK(join.out == "OK: node-4 (h:3003) is a member\n");
  const auto join_json =
      render_reply(invocation({"cluster", "join", "node-4", "h:3003", "--json"}), reply(201, ""));
  CHECK(join_json.out == "{\"id\":\"node-4\",\"address\":\"h:3003\"}\n");
}

TEST_CASE("ctl: transport failures: cannot connect, no answer, bad answer", "[server][ctl]") {
  const auto refused = render_transport_failure(
      invocation({"get", "k"}), TransportFailure::kCannotConnect, "Connection refused");
  CHECK(refused.exit_code == kExitCannotConnect);
  CHECK(refused.err ==
        "nodenomadctl: cannot connect to 127.0.0.1:3000: Connection refused; nothing was sent\n");
  CHECK(refused.out.empty());

  const auto lost = render_transport_failure(invocation({"put", "k", "v", "--json"}),
                                             TransportFailure::kNoReply, "timed out after 10 ms");
  CHECK(lost.exit_code == kExitUnknownOutcome);
  CHECK(lost.err ==
        "nodenomadctl: no answer from 127.0.0.1:3000: timed out after 10 ms; the "
        "write may or may not have been applied\n");
  CHECK(parse_json(lost.out).at("error").at("code").as_string() == "unknown_outcome");

  const auto read_lost = render_transport_failure(invocation({"get", "k"}),
                                                  TransportFailure::kNoReply, "end of stream");
  CHECK(read_lost.err == "nodenomadctl: no answer from 127.0.0.1:3000: end of stream\n");

  const auto garbage =
      render_transport_failure(invocation({"status"}), TransportFailure::kBadReply, "bad version");
  CHECK(garbage.exit_code == kExitOther);
}

TEST_CASE("ctl: usage errors exit 2, as JSON with --json", "[server][ctl]") {
  const auto plain = render_usage_error(false, "no command");
  CHECK(plain.exit_code == kExitUsage);
  CHECK(plain.err == "nodenomadctl: no command\nRun 'nodenomadctl --help' for usage.\n");
  CHECK(plain.out.empty());
  const auto json = render_usage_error(true, "bad \"x\"");
  CHECK(parse_json(json.out).at("error").at("message").as_string() == "bad \"x\"");
}

}  // namespace
}  // namespace nodenomad::ctl
