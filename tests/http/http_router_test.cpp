// HttpRouter without sockets: every route, every error code, the query and
// key rules of API.md, and the text helpers they rest on.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include "http/fake_client_api.hpp"
#include "http/router_test_support.hpp"
#include "http/http_metrics.hpp"
#include "http/http_router.hpp"
#include "http/http_text.hpp"

namespace nodenomad::net {
namespace {

namespace json = boost::json;
using testing::expect_error;
using testing::FakeClientApi;
using testing::header;
using testing::parse;
using testing::RouterFixture;

TEST_CASE("router: put, get and delete a key with versions", "[http][router]") {
  RouterFixture f;
  RouterResponse put = f.call("PUT", "/v1/kv/alpha", "one");
  CHECK(put.status == 200);
  CHECK(parse(put) == json::parse(R"({"key":"alpha","version":1})"));
  CHECK(parse(f.call("PUT", "/v1/kv/alpha", "two")).at("version") == 2);

  RouterResponse get = f.call("GET", "/v1/kv/alpha");
  CHECK(get.status == 200);
  CHECK(get.body == "two");
  CHECK(get.content_type == "application/octet-stream");
  CHECK(header(get, "X-NodeNomad-Version") == "2");
  CHECK(header(get, "X-NodeNomad-Expires-In-Ms") == "<absent>");

  CHECK(parse(f.call("DELETE", "/v1/kv/alpha")) == json::parse(R"({"deleted":true})"));
  CHECK(parse(f.call("DELETE", "/v1/kv/alpha")) == json::parse(R"({"deleted":false})"));
  expect_error(f.call("GET", "/v1/kv/alpha"), 404, "not_found");
  // A re-created key continues above its old versions.
  CHECK(parse(f.call("PUT", "/v1/kv/alpha", "x")).at("version") == 4);
}

TEST_CASE("router: query parameters reach the ClientApi", "[http][router]") {
  RouterFixture f;
  CHECK(f.call("PUT", "/v1/kv/k?ttl=5&if_version=0", "v").status == 200);
  REQUIRE(f.api.last_put_options().has_value());
  CHECK(f.api.last_put_options()->ttl_ms == 5000);
  CHECK(f.api.last_put_options()->if_version == 0);
  RouterResponse get = f.call("GET", "/v1/kv/k?consistency=lease");
  CHECK(header(get, "X-NodeNomad-Expires-In-Ms") == "5000");
  CHECK(f.api.last_get_options()->consistency == ReadConsistency::kLease);
  f.call("GET", "/v1/kv/k?consistency=stale");
  CHECK(f.api.last_get_options()->consistency == ReadConsistency::kStale);
  f.call("GET", "/v1/kv/k?consistency=linearizable");
  CHECK(f.api.last_get_options()->consistency == ReadConsistency::kLinearizable);
  f.call("GET", "/v1/kv/k");
  CHECK(f.api.last_get_options()->consistency == ReadConsistency::kLinearizable);
}

TEST_CASE("router: compare-and-set answers 412 with current_version", "[http][router]") {
  RouterFixture f;
  CHECK(f.call("PUT", "/v1/kv/k?if_version=0", "a").status == 200);
  RouterResponse lost = f.call("PUT", "/v1/kv/k?if_version=0", "b");
  expect_error(lost, 412, "version_mismatch");
  CHECK(parse(lost).at("current_version") == 1);
  CHECK(f.call("PUT", "/v1/kv/k?if_version=1", "b").status == 200);
  RouterResponse del = f.call("DELETE", "/v1/kv/k?if_version=1");
  expect_error(del, 412, "version_mismatch");
  CHECK(parse(del).at("current_version") == 2);
  CHECK(f.call("DELETE", "/v1/kv/k?if_version=2").status == 200);
}

TEST_CASE("router: bad query values are 400 naming the parameter", "[http][router]") {
  RouterFixture f;
  for (const char* target :
       {"/v1/kv/k?ttl=0", "/v1/kv/k?ttl=-1", "/v1/kv/k?ttl=abc",
        "/v1/kv/k?ttl=", "/v1/kv/k?ttl=1.5", "/v1/kv/k?ttl=99999999999999999999"}) {
    INFO(target);
    CHECK_THAT(expect_error(f.call("PUT", target, "v"), 400, "invalid_argument"),
               Catch::Contains("ttl must be a whole number of seconds"));
  }
  CHECK_THAT(expect_error(f.call("PUT", "/v1/kv/k?if_version=x", "v"), 400, "invalid_argument"),
             Catch::Contains("if_version must be"));
  CHECK_THAT(expect_error(f.call("DELETE", "/v1/kv/k?if_version=-2"), 400, "invalid_argument"),
             Catch::Contains("if_version must be"));
  CHECK_THAT(expect_error(f.call("GET", "/v1/kv/k?consistency=strong"), 400, "invalid_argument"),
             Catch::Contains("linearizable, lease, stale"));
  CHECK_THAT(
      expect_error(f.call("PUT", "/v1/kv/k?tll=5", "v"), 400, "invalid_argument"),
      Catch::Contains("unknown query parameter 'tll'") && Catch::Contains("ttl, if_version"));
  CHECK_THAT(expect_error(f.call("GET", "/v1/kv/k?ttl=5"), 400, "invalid_argument"),
             Catch::Contains("unknown query parameter 'ttl'"));
  CHECK_THAT(expect_error(f.call("PUT", "/v1/kv/k?ttl=1&ttl=2", "v"), 400, "invalid_argument"),
             Catch::Contains("given twice"));
  CHECK_THAT(expect_error(f.call("PUT", "/v1/kv/k?ttl", "v"), 400, "invalid_argument"),
             Catch::Contains("needs a value"));
  CHECK_THAT(expect_error(f.call("PUT", "/v1/kv/k?ttl=%G1", "v"), 400, "invalid_argument"),
             Catch::Contains("percent-encoding"));
  CHECK(f.api.calls() == 0);
  // Encoded names and values are decoded; empty pieces are skipped.
  CHECK(f.call("PUT", "/v1/kv/k?%74tl=%31&", "v").status == 200);
  CHECK(f.api.last_put_options()->ttl_ms == 1000);
}

TEST_CASE("router: keys are percent-decoded and binary-safe", "[http][router]") {
  RouterFixture f;
  CHECK(f.call("PUT", "/v1/kv/a%2Fb", "v").status == 200);
  CHECK(f.api.last_key() == "a/b");
  CHECK(f.call("PUT", "/v1/kv/nul%00byte", "v").status == 200);
  CHECK(f.api.last_key() == std::string("nul\0byte", 8));
  CHECK(f.call("PUT", "/v1/kv/a/b+c", "v").status == 200);
  CHECK(f.api.last_key() == "a/b+c");
  CHECK(f.call("GET", "/v1/kv/a%2fb").body == "v");

  // A key that is not UTF-8 comes back as valid JSON, with U+FFFD.
  RouterResponse binary = f.call("PUT", "/v1/kv/%FF%00x", "v");
  CHECK(f.api.last_key() == std::string("\xFF\0x", 3));
  CHECK(parse(binary).at("key").as_string() == std::string("\xEF\xBF\xBD\0x", 5));

  for (const char* bad : {"/v1/kv/%G1", "/v1/kv/ab%4", "/v1/kv/%", "/v1/kv/a%2"}) {
    INFO(bad);
    CHECK_THAT(expect_error(f.call("GET", bad), 400, "invalid_key"),
               Catch::Contains("percent-encoding"));
  }
  CHECK_THAT(expect_error(f.call("PUT", "/v1/kv/", "v"), 400, "invalid_key"),
             Catch::Contains("1 to 1024 bytes"));
  expect_error(f.call("GET", "/v1/kv"), 400, "invalid_key");
}

TEST_CASE("router: key length limit counts decoded bytes", "[http][router]") {
  RouterFixture f;
  CHECK(f.call("PUT", "/v1/kv/" + std::string(1024, 'k'), "v").status == 200);
  CHECK(f.api.last_key().size() == 1024);
  expect_error(f.call("PUT", "/v1/kv/" + std::string(1025, 'k'), "v"), 400, "invalid_key");
  std::string encoded;
  for (int i = 0; i < 1024; ++i) encoded += "%41";
  CHECK(f.call("PUT", "/v1/kv/" + encoded, "v").status == 200);
  CHECK(f.api.last_key() == std::string(1024, 'A'));
  CHECK_THAT(expect_error(f.call("DELETE", "/v1/kv/" + encoded + "%41"), 400, "invalid_key"),
             Catch::Contains("1025 bytes"));
}

TEST_CASE("router: a value over max_value_bytes is 413", "[http][router]") {
  RouterFixture f;  // max_value_bytes = 64
  CHECK(f.call("PUT", "/v1/kv/k", std::string(64, 'v')).status == 200);
  CHECK_THAT(expect_error(f.call("PUT", "/v1/kv/k", std::string(65, 'v')), 413, "value_too_large"),
             Catch::Contains("65 bytes") && Catch::Contains("at most 64"));
  // Values are binary-safe.
  std::string all_bytes;
  for (int b = 0; b < 64; ++b) all_bytes.push_back(static_cast<char>(b * 4 + 3));
  CHECK(f.call("PUT", "/v1/kv/bin", all_bytes).status == 200);
  CHECK(f.call("GET", "/v1/kv/bin").body == all_bytes);
}

TEST_CASE("router: ClientApi statuses map to HTTP statuses", "[http][router]") {
  RouterFixture f;
  struct Case {
    Status status;
    unsigned http;
    std::string_view code;
  };
  const std::vector<Case> cases = {
      {Status::unavailable("no quorum for shard 3"), 503, "unavailable"},
      {Status::busy("queue full"), 503, "unavailable"},
      {Status::failed("fsync failed"), 503, "unavailable"},
      {Status::aborted("stopping"), 503, "unavailable"},
      {Status::timeout("outcome unknown"), 504, "timeout"},
      {Status::invalid_argument("value is too big for the shard"), 400, "invalid_argument"},
      {Status::io_error("disk"), 500, "internal_error"},
  };
  for (const auto& c : cases) {
    INFO(c.status.to_string());
    f.api.set_kv_status(c.status);
    for (const char* method : {"PUT", "GET", "DELETE"}) {
      RouterResponse response = f.call(method, "/v1/kv/k", "v");
      CHECK(expect_error(response, c.http, c.code) == c.status.message());
      CHECK(header(response, "Retry-After") == (c.http == 503 ? "7" : "<absent>"));
    }
  }
  f.api.set_kv_status(Status::not_found("gone"));
  expect_error(f.call("GET", "/v1/kv/k"), 404, "not_found");
  CHECK(parse(f.call("DELETE", "/v1/kv/k")) == json::parse(R"({"deleted":false})"));
  CHECK(http_status_of(StatusCode::kOk).first == 200);
}

TEST_CASE("router: unknown routes, methods and targets", "[http][router]") {
  RouterFixture f;
  CHECK_THAT(expect_error(f.call("GET", "/v2/kv/k"), 404, "not_found"),
             Catch::Contains("no route for /v2/kv/k"));
  expect_error(f.call("GET", "/v1/cluster/"), 404, "not_found");
  expect_error(f.call("GET", "/v1/migrations/a/b"), 404, "not_found");
  expect_error(f.call("GET", "http://host/v1/kv/k"), 400, "invalid_argument");
  expect_error(f.call("GET", "*"), 400, "invalid_argument");

  RouterResponse post = f.call("POST", "/v1/kv/k", "v");
  expect_error(post, 405, "method_not_allowed");
  CHECK(header(post, "Allow") == "GET, PUT, DELETE");
  CHECK(header(f.call("HEAD", "/health"), "Allow") == "GET");
  CHECK(header(f.call("GET", "/v1/cluster/nodes"), "Allow") == "POST");
  CHECK(header(f.call("PUT", "/v1/migrations"), "Allow") == "GET, POST");
  CHECK(header(f.call("get", "/v1/cluster"), "Allow") == "GET");  // methods are case-sensitive
  CHECK(f.api.calls() == 0);
}

TEST_CASE("router: route labels are bounded templates", "[http][router]") {
  CHECK(route_label("/v1/kv/some%2Fkey?ttl=3") == "/v1/kv/{key}");
  CHECK(route_label("/v1/migrations/op-7") == "/v1/migrations/{id}");
  CHECK(route_label("/v1/cluster/nodes/node-2") == "/v1/cluster/nodes/{id}");
  CHECK(route_label("/v1/migrations/op-7/pause") == "/v1/migrations/{id}/pause");
  CHECK(route_label("/v1/migrations/op-7/resume?x") == "/v1/migrations/{id}/resume");
  CHECK(route_label("/v1/migrations/op-7/bandwidth") == "/v1/migrations/{id}/bandwidth");
  CHECK(route_label("/v1/migrations/op-7/other") == "unmatched");
  CHECK(route_label("/v1/migrations//pause") == "unmatched");
  CHECK(route_label("/v1/rebalance") == "/v1/rebalance");
  CHECK(route_label("/whatever/else") == "unmatched");
  RouterFixture f;
  CHECK(f.router.route({"GET", "/health", ""}, [](RouterResponse) {}) == "/health");
}

TEST_CASE("router: GET /v1/cluster has exactly API.md's shape", "[http][router]") {
  RouterFixture f;
  ClusterInfo info;
  info.cluster_id = "c-1";
  info.metadata_leader = NodeId("node-1");
  info.nodes.push_back({NodeId("node-1"), "127.0.0.1:3000", "up", 2, 1});
  info.shards.push_back({ShardId(3),
                         Epoch(4),
                         {NodeId("node-1"), NodeId("node-2")},
                         {NodeId("node-3")},
                         NodeId(),
                         10,
                         200});
  f.api.set_cluster(info);
  RouterResponse response = f.call("GET", "/v1/cluster");
  CHECK(response.status == 200);
  CHECK(parse(response) == json::parse(R"({
    "cluster_id": "c-1", "metadata_leader": "node-1",
    "nodes": [{"id": "node-1", "address": "127.0.0.1:3000", "status": "up",
               "shards_hosted": 2, "shards_led": 1}],
    "shards": [{"id": 3, "epoch": 4, "replicas": ["node-1", "node-2"], "learners": ["node-3"],
                "leader": "", "keys": 10, "bytes": 200}]})"));
  f.api.set_cluster(Status::unavailable("no metadata leader"));
  expect_error(f.call("GET", "/v1/cluster"), 503, "unavailable");
}

TEST_CASE("router: POST /v1/cluster/nodes validates and answers 201", "[http][router]") {
  RouterFixture f;
  RouterResponse added =
      f.call("POST", "/v1/cluster/nodes", R"({"id": "node-4", "address": "127.0.0.1:3003"})");
  CHECK(added.status == 201);
  CHECK(parse(added) == json::parse(R"({"id": "node-4", "address": "127.0.0.1:3003"})"));
  REQUIRE(f.api.added_nodes().size() == 1);
  CHECK(f.api.added_nodes()[0].first == NodeId("node-4"));
  CHECK(f.api.added_nodes()[0].second == "127.0.0.1:3003");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not json", "JSON object"},
      {"[1, 2]", "JSON object"},
      {R"({"address": "h:1"})", "field \"id\""},
      {R"({"id": 4, "address": "h:1"})", "field \"id\""},
      {R"({"id": "", "address": "h:1"})", "field \"id\""},
      {R"({"id": "a/b", "address": "h:1"})", "field \"id\""},
      {R"({"id": "n"})", "field \"address\""},
      {R"({"id": "n", "address": "nohost"})", "field \"address\""},
      {R"({"id": "n", "address": "h:0"})", "field \"address\""},
      {R"({"id": "n", "address": "h:70000"})", "field \"address\""},
      {R"({"id": "n", "address": "h:1", "weight": 2})", "unknown field \"weight\""},
  };
  for (const auto& [body, expected] : bad) {
    INFO(body);
    CHECK_THAT(expect_error(f.call("POST", "/v1/cluster/nodes", body), 400, "invalid_argument"),
               Catch::Contains(expected));
  }
  CHECK(f.api.added_nodes().size() == 1);
  f.api.set_add_node_status(Status::unavailable("no metadata quorum"));
  expect_error(f.call("POST", "/v1/cluster/nodes", R"({"id":"n5","address":"h:5"})"), 503,
               "unavailable");
  f.api.set_add_node_status(Status::already_exists("node-4 is a member"));
  expect_error(f.call("POST", "/v1/cluster/nodes", R"({"id":"node-4","address":"h:5"})"), 409,
               "already_exists");
}

TEST_CASE("router: health, ready and metrics", "[http][router]") {
  RouterFixture f;
  RouterResponse health = f.call("GET", "/health?probe=1");
  CHECK(health.status == 200);
  CHECK(parse(health) == json::parse(R"({"status": "ok", "node": "node-1"})"));
  CHECK(parse(f.call("GET", "/ready")) == json::parse(R"({"ready": true, "node": "node-1"})"));
  f.api.set_ready(false);
  RouterResponse not_ready = f.call("GET", "/ready");
  expect_error(not_ready, 503, "unavailable");
  CHECK(parse(not_ready).at("ready") == false);
  CHECK(parse(not_ready).at("node") == "node-1");
  CHECK(header(not_ready, "Retry-After") == "7");

  RouterResponse metrics = f.call("GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body == "nodenomad_fake_up 1\nhttp_extra 1\n");
}

TEST_CASE("text: percent_decode", "[http][text]") {
  CHECK(*percent_decode("") == "");
  CHECK(*percent_decode("a%20b%2f%2F+") == "a b//+");
  CHECK(*percent_decode("%00") == std::string(1, '\0'));
  CHECK(*percent_decode("%ff%FF") == "\xFF\xFF");
  for (const char* bad : {"%", "%4", "%G1", "%1G", "ab%"}) {
    INFO(bad);
    CHECK(percent_decode(bad).status().is(StatusCode::kInvalidArgument));
  }
  CHECK_THAT(std::string(percent_decode("abc%zz").status().message()), Catch::Contains("byte 3"));
}

TEST_CASE("text: to_valid_utf8 keeps UTF-8 and replaces the rest", "[http][text]") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(to_valid_utf8("plain") == "plain");
  CHECK(to_valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") ==
        "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  CHECK(to_valid_utf8("\xFF") == fffd);
  CHECK(to_valid_utf8("a\xC3") == "a" + fffd);                            // truncated
  CHECK(to_valid_utf8("\xC0\xAF") == fffd + fffd);                        // overlong
  CHECK(to_valid_utf8("\xED\xA0\x80") == fffd + fffd + fffd);             // surrogate
  CHECK(to_valid_utf8("\xF4\x90\x80\x80") == fffd + fffd + fffd + fffd);  // > U+10FFFF
  CHECK(to_valid_utf8(std::string("\0", 1)) == std::string("\0", 1));
}

TEST_CASE("metrics: counters and cumulative histogram buckets", "[http][metrics]") {
  HttpMetrics metrics;
  metrics.record_request("/v1/kv/{key}", "PUT", 200, 0.0003);
  metrics.record_request("/v1/kv/{key}", "PUT", 200, 0.02);
  metrics.record_request("/v1/kv/{key}", "BREW", 405, 20.0);
  metrics.record_connection_refused();
  const std::string text = metrics.text(3);
  CHECK_THAT(text, Catch::Contains("nodenomad_http_requests_total{route=\"/v1/kv/"
                                   "{key}\",method=\"PUT\",status=\"200\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("nodenomad_http_requests_total{route=\"/v1/kv/"
                                   "{key}\",method=\"other\",status=\"405\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("nodenomad_http_request_duration_seconds_bucket{route=\"/v1/kv/"
                                   "{key}\",le=\"0.0005\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("nodenomad_http_request_duration_seconds_bucket{route=\"/v1/kv/"
                                   "{key}\",le=\"0.025\"} 2\n"));
  CHECK_THAT(
      text,
      Catch::Contains(
          "nodenomad_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",le=\"10\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("nodenomad_http_request_duration_seconds_bucket{route=\"/v1/kv/"
                                   "{key}\",le=\"+Inf\"} 3\n"));
  CHECK_THAT(
      text,
      Catch::Contains("nodenomad_http_request_duration_seconds_count{route=\"/v1/kv/{key}\"} 3\n"));
  CHECK_THAT(text, Catch::Contains("# TYPE nodenomad_http_request_duration_seconds histogram\n"));
  CHECK_THAT(text, Catch::Contains("nodenomad_http_open_connections 3\n"));
  CHECK_THAT(text, Catch::Contains("nodenomad_http_connections_refused_total 1\n"));
}

}  // namespace
}  // namespace nodenomad::net
