// The migration routes of HttpRouter without sockets: the exact JSON of an
// operation, the batch answers, body validation, the controls, the error
// mapping, and the helpers that write the JSON (http_migration_json.hpp).
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <limits>

#include "http/fake_client_api.hpp"
#include "http/http_migration_json.hpp"
#include "http/http_router.hpp"
#include "http/http_text.hpp"
#include "http/router_test_support.hpp"

namespace nodenomad::net {
namespace {

namespace json = boost::json;
using testing::expect_error;
using testing::header;
using testing::parse;
using testing::RouterFixture;

// 2025-11-26T10:00:00.000Z
constexpr std::uint64_t kNoonishMs = 1'764'151'200'000;

MigrationStatus transferring_op() {
  MigrationStatus op;
  op.id = "op-9";
  op.batch_id = "batch-4";
  op.shard = ShardId(3);
  op.source = NodeId("node-1");
  op.target = NodeId("node-4");
  op.stage = MigrationStage::kTransfer;
  op.bandwidth_bytes_per_s = 52'428'800;
  op.progress = {1000, 425, 10, 4, 42.5, 1536.25, 0.37};
  op.started_at_ms = kNoonishMs + 123;
  op.stage_ms = {15, 2000};
  return op;
}

MigrationRequest planned_move(std::uint64_t shard, std::string source, std::string target) {
  return {{ShardId(shard)}, NodeId(std::move(source)), NodeId(std::move(target)), 0};
}

TEST_CASE("router: POST /v1/migrations starts one operation per shard",
          "[http][router][migration]") {
  RouterFixture f;
  RouterResponse created = f.call(
      "POST", "/v1/migrations",
      R"({"shards": [3, 7], "source": "node-1", "target": "node-4", "bandwidth_bytes_per_s": 0})");
  CHECK(created.status == 202);
  CHECK(created.content_type == "application/json");
  CHECK(created.body == R"({"id":"batch-1","operations":["op-1","op-2"]})");
  const auto request = f.api.last_migration_request();
  REQUIRE(request.has_value());
  CHECK(request->shards == std::vector<ShardId>{ShardId(3), ShardId(7)});
  CHECK(request->source == NodeId("node-1"));
  CHECK(request->target == NodeId("node-4"));
  CHECK(request->bandwidth_bytes_per_s == 0);

  // The optional bandwidth, and the largest shard id.
  CHECK(f.call("POST", "/v1/migrations",
               R"({"target": "n2", "source": "n1", "shards": [4294967295],
                   "bandwidth_bytes_per_s": 1048576})")
            .status == 202);
  CHECK(f.api.last_migration_request()->shards == std::vector<ShardId>{ShardId(4294967295)});
  CHECK(f.api.last_migration_request()->bandwidth_bytes_per_s == 1048576);
}

TEST_CASE("router: POST /v1/migrations names the field at fault", "[http][router][migration]") {
  RouterFixture f;
  const std::string shard_form =
      "a non-empty array of shard ids, whole numbers from 0 to 4294967295";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "the body must be a JSON object {\"shards\": [3, 7]"},
      {"[3, 7]", "the body must be a JSON object"},
      {R"({"shards": [3], "source": "a", "target": "b")", "the body must be a JSON object"},
      {R"({"source": "a", "target": "b"})", "field \"shards\" must be " + shard_form},
      {R"({"shards": [], "source": "a", "target": "b"})", "field \"shards\" must be"},
      {R"({"shards": 3, "source": "a", "target": "b"})", "field \"shards\" must be"},
      {R"({"shards": [3, -1], "source": "a", "target": "b"})",
       "field \"shards\": element 1 (-1) is not a shard id"},
      {R"({"shards": [3.0], "source": "a", "target": "b"})", "element 0 (3E0) is not a shard id"},
      {R"({"shards": ["3"], "source": "a", "target": "b"})", "element 0 (\"3\")"},
      {R"({"shards": [4294967296], "source": "a", "target": "b"})", "element 0 (4294967296)"},
      {R"({"shards": [null], "source": "a", "target": "b"})", "element 0 (null)"},
      {R"({"shards": [1], "target": "b"})", "field \"source\" must be a node id"},
      {R"({"shards": [1], "source": "", "target": "b"})", "field \"source\" must be a node id"},
      {R"({"shards": [1], "source": 1, "target": "b"})", "field \"source\""},
      {R"({"shards": [1], "source": "a"})", "field \"target\" must be a node id"},
      {R"({"shards": [1], "source": "a", "target": "b/c"})", "field \"target\""},
      {R"({"shards": [1], "source": "a", "target": "b", "bandwidth_bytes_per_s": -5})",
       "field \"bandwidth_bytes_per_s\" must be a whole number of bytes per second, >= 0"},
      {R"({"shards": [1], "source": "a", "target": "b", "bandwidth_bytes_per_s": "50MB"})",
       "field \"bandwidth_bytes_per_s\""},
      {R"({"shards": [1], "source": "a", "target": "b", "bandwidth": 5})",
       "unknown field \"bandwidth\"; accepted: shards, source, target, bandwidth_bytes_per_s"},
  };
  for (const auto& [body, expected] : bad) {
    INFO(body);
    CHECK_THAT(expect_error(f.call("POST", "/v1/migrations", body), 400, "invalid_argument"),
               Catch::Contains(expected));
  }
  std::string many = R"({"source": "a", "target": "b", "shards": [0)";
  for (int i = 1; i <= 4096; ++i) many += "," + std::to_string(i);
  CHECK_THAT(expect_error(f.call("POST", "/v1/migrations", many + "]}"), 400, "invalid_argument"),
             Catch::Contains("lists 4097 shards; at most 4096"));
  CHECK(f.api.calls() == 0);
}

TEST_CASE("router: an operation is API.md's shape plus the extensions",
          "[http][router][migration]") {
  RouterFixture f;
  f.api.add_migration(transferring_op());
  RouterResponse running = f.call("GET", "/v1/migrations/op-9");
  CHECK(running.status == 200);
  // The exact text: numbers as people write them, not Boost.JSON's "4.25E1".
  CHECK(running.body ==
        R"({"id":"op-9","shard":3,"source":"node-1","target":"node-4","stage":"transfer",)"
        R"("progress":{"bytes_total":1000,"bytes_done":425,"keys_done":4,"percent":42.5,)"
        R"("rate_bytes_per_s":1536.3,"eta_s":0.4,"keys_total":10},)"
        R"("started_at":"2025-11-26T10:00:00.123Z","finished_at":null,"error":null,)"
        R"("batch_id":"batch-4","queued":false,"paused":false,"cancel_requested":false,)"
        R"("bandwidth_bytes_per_s":52428800,)"
        R"("stage_ms":{"prepare":15,"transfer":2000,"verify":0,"update":0,"cleanup":0},)"
        R"("verify_mismatches":0,"bytes_freed":0})");

  f.api.update_migration("op-9", [](MigrationStatus& op) {
    op.stage = MigrationStage::kFailed;
    op.progress.eta_s.reset();
    op.finished_at_ms = kNoonishMs + 61'005;
    op.error = "verify: \"digest\" differs\n";
    op.stage_ms = {1, 2, 3, 4, 5, 6};  // more than the five timed stages
    op.verify_mismatches = 2;
    op.bytes_freed = 77;
    op.queued = true;
  });
  const json::value failed = parse(f.call("GET", "/v1/migrations/op-9"));
  CHECK(failed.at("stage") == "failed");
  CHECK(failed.at("progress").at("eta_s").is_null());
  CHECK(failed.at("finished_at") == "2025-11-26T10:01:01.005Z");
  CHECK(failed.at("error") == "verify: \"digest\" differs\n");
  CHECK(failed.at("stage_ms") ==
        json::parse(R"({"prepare":1,"transfer":2,"verify":3,"update":4,"cleanup":5})"));
  CHECK(failed.at("verify_mismatches") == 2);
  CHECK(failed.at("bytes_freed") == 77);
  CHECK(failed.at("queued") == true);

  // Not started yet: no start time.
  f.api.update_migration("op-9", [](MigrationStatus& op) { op.started_at_ms = 0; });
  CHECK(parse(f.call("GET", "/v1/migrations/op-9")).at("started_at").is_null());
}

TEST_CASE("router: GET /v1/migrations lists every operation in order",
          "[http][router][migration]") {
  RouterFixture f;
  CHECK(f.call("GET", "/v1/migrations").body == R"({"migrations":[]})");
  f.api.set_planned_moves(
      {planned_move(1, "node-1", "node-2"), planned_move(5, "node-3", "node-2")});
  CHECK(f.call("POST", "/v1/rebalance").status == 202);
  f.api.add_migration(transferring_op());
  const json::value list = parse(f.call("GET", "/v1/migrations"));
  const json::array& ops = list.at("migrations").as_array();
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].at("id") == "op-1");
  CHECK(ops[0].at("shard") == 1);
  CHECK(ops[0].at("stage") == "prepare");
  CHECK(ops[0].at("started_at") == "2025-11-26T10:00:00.000Z");
  CHECK(ops[1].at("id") == "op-2");
  CHECK(ops[1].at("source") == "node-3");
  CHECK(ops[2].at("id") == "op-9");
  CHECK(ops[2].at("progress").at("percent") == 42.5);
}

TEST_CASE("router: cancel, pause, resume and bandwidth control one operation",
          "[http][router][migration]") {
  RouterFixture f;
  f.api.add_migration(transferring_op());

  RouterResponse paused = f.call("POST", "/v1/migrations/op-9/pause");
  CHECK(paused.status == 200);
  CHECK(parse(paused).at("paused") == true);
  CHECK(f.api.last_control()->control == MigrationControl::kPause);

  RouterResponse resumed = f.call("POST", "/v1/migrations/op-9/resume", "{ }");
  CHECK(resumed.status == 200);
  CHECK(parse(resumed).at("paused") == false);
  CHECK(f.api.last_control()->control == MigrationControl::kResume);

  RouterResponse throttled =
      f.call("PUT", "/v1/migrations/op-9/bandwidth", R"({"bytes_per_s": 1048576})");
  CHECK(throttled.status == 200);
  CHECK(parse(throttled).at("bandwidth_bytes_per_s") == 1048576);
  CHECK(f.api.last_control()->control == MigrationControl::kSetBandwidth);
  CHECK(f.api.last_control()->bandwidth_bytes_per_s == 1048576);

  // Cancel is accepted (202) and answers the operation as recorded.
  RouterResponse cancelled = f.call("DELETE", "/v1/migrations/op-9");
  CHECK(cancelled.status == 202);
  CHECK(parse(cancelled).at("stage") == "cancelled");
  CHECK(parse(cancelled).at("cancel_requested") == true);
  CHECK(f.api.last_control()->id == "op-9");
  CHECK(f.api.last_control()->control == MigrationControl::kCancel);

  // The ended operation refuses more; the Node's message passes through.
  CHECK_THAT(expect_error(f.call("POST", "/v1/migrations/op-9/pause"), 400, "invalid_argument"),
             Catch::Contains("has ended (cancelled)"));
  // The id is percent-decoded.
  CHECK_THAT(expect_error(f.call("GET", "/v1/migrations/op%2D404"), 404, "not_found"),
             Catch::Contains("no migration operation \"op-404\""));
}

TEST_CASE("router: control bodies are checked before the ClientApi is asked",
          "[http][router][migration]") {
  RouterFixture f;
  f.api.add_migration(transferring_op());
  const std::string form = "field \"bytes_per_s\" must be a whole number of bytes per second";
  const std::vector<std::pair<std::string, std::string>> bad_bandwidth = {
      {"", "the body must be a JSON object {\"bytes_per_s\": N}"},
      {"52428800", "the body must be a JSON object"},
      {"{}", form},
      {R"({"bytes_per_s": 0})", form},
      {R"({"bytes_per_s": -1})", form},
      {R"({"bytes_per_s": 1.5})", form},
      {R"({"bytes_per_s": "50MB"})", form},
      {R"({"bytes_per_s": 5, "burst": 1})", "unknown field \"burst\"; accepted: bytes_per_s"},
  };
  for (const auto& [body, expected] : bad_bandwidth) {
    INFO(body);
    CHECK_THAT(
        expect_error(f.call("PUT", "/v1/migrations/op-9/bandwidth", body), 400, "invalid_argument"),
        Catch::Contains(expected));
  }
  CHECK_THAT(expect_error(f.call("POST", "/v1/migrations/op-9/pause", R"({"now": true})"), 400,
                          "invalid_argument"),
             Catch::Contains("unknown field \"now\""));
  CHECK_THAT(
      expect_error(f.call("POST", "/v1/migrations/op-9/resume", "[]"), 400, "invalid_argument"),
      Catch::Contains("takes no field"));
  CHECK_THAT(expect_error(f.call("GET", "/v1/migrations/op%zz"), 400, "invalid_argument"),
             Catch::Contains("the operation id has a bad percent-encoding"));
  CHECK_THAT(expect_error(f.call("GET", "/v1/migrations/" + std::string(257, 'x')), 400,
                          "invalid_argument"),
             Catch::Contains("257 bytes; an operation id is at most 256"));
  CHECK(f.api.calls() == 0);
}

TEST_CASE("router: rebalance and drain answer the operations they started",
          "[http][router][migration]") {
  RouterFixture f;
  f.api.set_planned_moves({planned_move(1, "node-2", "node-4"), planned_move(2, "node-1", "node-4"),
                           planned_move(6, "node-2", "node-5")});
  RouterResponse rebalanced = f.call("POST", "/v1/rebalance");
  CHECK(rebalanced.status == 202);
  CHECK(rebalanced.body == R"({"id":"batch-1","operations":["op-1","op-2","op-3"]})");
  CHECK(f.call("POST", "/v1/rebalance", " {} \n").body ==
        R"({"id":"batch-2","operations":["op-4","op-5","op-6"]})");
  CHECK_THAT(
      expect_error(f.call("POST", "/v1/rebalance", R"({"max_moves": 2})"), 400, "invalid_argument"),
      Catch::Contains("unknown field \"max_moves\"; accepted: none"));

  RouterResponse drained = f.call("DELETE", "/v1/cluster/nodes/node-2");
  CHECK(drained.status == 202);
  CHECK(drained.body == R"({"id":"batch-3","operations":["op-7","op-8"]})");
  CHECK(f.api.last_drained() == NodeId("node-2"));
  const auto ops = f.api.migrations();
  REQUIRE(ops.size() == 8);
  CHECK(ops[6].shard == ShardId(1));
  CHECK(ops[7].shard == ShardId(6));
  // A node holding nothing drains at once: no operation.
  CHECK(f.call("DELETE", "/v1/cluster/nodes/node-9").body == R"({"id":"batch-4","operations":[]})");
  for (const char* bad :
       {"/v1/cluster/nodes/a%2Fb", "/v1/cluster/nodes/%G0", "/v1/cluster/nodes/a%20b"}) {
    INFO(bad);
    expect_error(f.call("DELETE", bad), 400, "invalid_argument");
  }
  CHECK(f.api.last_drained() == NodeId("node-9"));
}

TEST_CASE("router: migration errors map as the error table says", "[http][router][migration]") {
  RouterFixture f;
  f.api.add_migration(transferring_op());
  struct Case {
    Status status;
    unsigned http;
    std::string_view code;
  };
  const std::vector<Case> cases = {
      {Status::invalid_argument("shard 7: node-4 already holds a replica"), 400,
       "invalid_argument"},
      {Status::not_found("no migration operation \"op-1\""), 404, "not_found"},
      {Status::version_mismatch("shard 3 moved meanwhile (epoch 4, planned at 3)"), 409,
       "version_mismatch"},
      {Status::unavailable("no metadata leader"), 503, "unavailable"},
      {Status::timeout("the metadata group did not answer"), 504, "timeout"},
      {Status::not_supported("no migrations here"), 501, "not_implemented"},
  };
  const std::vector<std::tuple<std::string, std::string, std::string>> calls = {
      {"POST", "/v1/migrations", R"({"shards": [7], "source": "node-1", "target": "node-4"})"},
      {"GET", "/v1/migrations", ""},
      {"GET", "/v1/migrations/op-9", ""},
      {"DELETE", "/v1/migrations/op-9", ""},
      {"POST", "/v1/migrations/op-9/pause", ""},
      {"POST", "/v1/migrations/op-9/resume", ""},
      {"PUT", "/v1/migrations/op-9/bandwidth", R"({"bytes_per_s": 10})"},
      {"POST", "/v1/rebalance", ""},
      {"DELETE", "/v1/cluster/nodes/node-1", ""},
  };
  for (const auto& c : cases) {
    f.api.set_migration_status(c.status);
    for (const auto& [method, target, body] : calls) {
      INFO(c.status.to_string() << ": " << method << " " << target);
      RouterResponse response = f.call(method, target, body);
      CHECK(expect_error(response, c.http, c.code) == c.status.message());
      CHECK(header(response, "Retry-After") == (c.http == 503 ? "7" : "<absent>"));
    }
  }
}

// A ClientApi that has not learnt migrations: ClientApi's defaults answer.
class KvOnlyApi : public ClientApi {
 public:
  void put(std::string, std::string, PutOptions, KvCallback done) override { done({}); }
  void get(std::string, GetOptions, KvCallback done) override { done({}); }
  void remove(std::string, RemoveOptions, KvCallback done) override { done({}); }
  void cluster_info(std::function<void(Result<ClusterInfo>)> done) override { done(ClusterInfo{}); }
  void add_node(NodeId, std::string, std::function<void(Status)> done) override {
    done(Status::ok());
  }
  const NodeId& node_id() const override { return id_; }
  bool is_ready() const override { return true; }
  std::string metrics_text() const override { return ""; }

 private:
  NodeId id_{"node-1"};
};

TEST_CASE("router: a ClientApi without migrations answers 501", "[http][router][migration]") {
  KvOnlyApi api;
  HttpRouter router(api, RouterLimits{}, nullptr);
  const std::vector<std::tuple<std::string, std::string, std::string>> calls = {
      {"POST", "/v1/migrations", R"({"shards": [7], "source": "node-1", "target": "node-4"})"},
      {"GET", "/v1/migrations", ""},
      {"GET", "/v1/migrations/op-1", ""},
      {"DELETE", "/v1/migrations/op-1", ""},
      {"POST", "/v1/migrations/op-1/pause", ""},
      {"PUT", "/v1/migrations/op-1/bandwidth", R"({"bytes_per_s": 10})"},
      {"POST", "/v1/rebalance", ""},
      {"DELETE", "/v1/cluster/nodes/node-2", ""},
  };
  for (const auto& [method, target, body] : calls) {
    INFO(method << " " << target);
    std::optional<RouterResponse> out;
    router.route({method, target, body}, [&](RouterResponse r) { out = std::move(r); });
    REQUIRE(out.has_value());
    CHECK(expect_error(*out, 501, "not_implemented") == "this ClientApi does not migrate shards");
  }
}

TEST_CASE("router: migration routes refuse query parameters and other methods",
          "[http][router][migration]") {
  RouterFixture f;
  f.api.add_migration(transferring_op());
  CHECK_THAT(expect_error(f.call("GET", "/v1/migrations?stage=done"), 400, "invalid_argument"),
             Catch::Contains("unknown query parameter 'stage' for GET /v1/migrations; "
                             "accepted: none"));
  CHECK_THAT(
      expect_error(f.call("POST", "/v1/migrations/op-9/pause?force=1"), 400, "invalid_argument"),
      Catch::Contains("for POST /v1/migrations/{id}/pause"));
  expect_error(f.call("DELETE", "/v1/cluster/nodes/node-1?now"), 400, "invalid_argument");

  const std::vector<std::tuple<std::string, std::string, std::string>> wrong = {
      {"PUT", "/v1/migrations/op-9", "GET, DELETE"},
      {"GET", "/v1/migrations/op-9/pause", "POST"},
      {"DELETE", "/v1/migrations/op-9/resume", "POST"},
      {"POST", "/v1/migrations/op-9/bandwidth", "PUT"},
      {"GET", "/v1/rebalance", "POST"},
      {"GET", "/v1/cluster/nodes/node-1", "DELETE"},
  };
  for (const auto& [method, target, allow] : wrong) {
    INFO(method << " " << target);
    RouterResponse response = f.call(method, target);
    expect_error(response, 405, "method_not_allowed");
    CHECK(header(response, "Allow") == allow);
  }
  expect_error(f.call("POST", "/v1/migrations/op-9/stop"), 404, "not_found");
  expect_error(f.call("POST", "/v1/migrations/op-9/pause/now"), 404, "not_found");
  expect_error(f.call("POST", "/v1/migrations//pause"), 404, "not_found");
  CHECK(f.api.calls() == 0);
}

TEST_CASE("migration json: timestamps, numbers and strings", "[http][migration]") {
  CHECK(format_utc_timestamp(1) == "1970-01-01T00:00:00.001Z");
  CHECK(format_utc_timestamp(kNoonishMs + 123) == "2025-11-26T10:00:00.123Z");
  CHECK(format_utc_timestamp(951'782'400'000) == "2000-02-29T00:00:00.000Z");  // leap day
  CHECK(format_utc_timestamp(std::numeric_limits<std::uint64_t>::max()) ==
        "9999-12-31T23:59:59.999Z");

  CHECK(json_number(42.5, 2) == "42.5");
  CHECK(json_number(100, 2) == "100");
  CHECK(json_number(33.3333, 2) == "33.33");
  CHECK(json_number(0.004, 2) == "0");
  CHECK(json_number(-0.001, 2) == "0");
  CHECK(json_number(1536.25, 1) == "1536.3");
  CHECK(json_number(std::numeric_limits<double>::quiet_NaN(), 2) == "0");
  CHECK(json_number(std::numeric_limits<double>::infinity(), 1) == "0");
  CHECK(json_number(1e300, 2) == "1e+300");  // valid JSON still

  MigrationBatch batch{"b\"1", {"op-1"}};
  CHECK(migration_batch_json(batch) == R"({"id":"b\"1","operations":["op-1"]})");
  std::string out;
  append_json_string(out, std::string("a\\b\x01\xFF", 5));
  CHECK(out == "\"a\\\\b\\u0001\xEF\xBF\xBD\"");

  // Whatever the operation holds, the answer is valid JSON.
  MigrationStatus odd = transferring_op();
  odd.id = std::string("op\0\xC3", 4);
  odd.progress.percent = std::numeric_limits<double>::quiet_NaN();
  odd.progress.eta_s = -1;
  boost::system::error_code ec;
  const json::value parsed = json::parse(migration_status_json(odd), ec);
  REQUIRE_FALSE(ec);
  CHECK(parsed.at("progress").at("percent") == 0);
  CHECK(parsed.at("progress").at("eta_s").is_null());
}

TEST_CASE("text: is_valid_node_id", "[http][text]") {
  CHECK(is_valid_node_id("node-1"));
  CHECK(is_valid_node_id("a.b_C-9"));
  CHECK(is_valid_node_id(std::string(64, 'n')));
  CHECK_FALSE(is_valid_node_id(""));
  CHECK_FALSE(is_valid_node_id(std::string(65, 'n')));
  CHECK_FALSE(is_valid_node_id("a/b"));
  CHECK_FALSE(is_valid_node_id("a b"));
  CHECK_FALSE(is_valid_node_id("node:1"));
}

}  // namespace
}  // namespace nodenomad::net
