// Following operations to their end, and status --watch, on scripted I/O:
// the HTTP exchanges go to the real HttpRouter over a FakeClientApi whose
// operations the test moves along at each (counted, not slept) sleep.
#include <catch2/catch.hpp>

#include <algorithm>

#include <boost/json.hpp>

#include "ctl_test_support.hpp"
#include "migrate_cli.hpp"

namespace nodenomad::ctl {
namespace {

using testing::failure;
using testing::parse_ok;
using testing::reply;
using testing::RouterIo;

std::size_t count(const std::string& text, std::string_view part) {
  std::size_t n = 0;
  for (std::size_t pos = text.find(part); pos != std::string::npos;
       pos = text.find(part, pos + part.size())) {
    ++n;
  }
  return n;
}

// Moves operation `id` of the fake to `stage` at `percent` of 1000 bytes.
void set(RouterIo& r, const std::string& id, MigrationStage stage, double percent,
         const std::function<void(MigrationStatus&)>& more = nullptr) {
  REQUIRE(r.api.update_migration(id, [&](MigrationStatus& op) {
    op.stage = stage;
    op.progress.bytes_total = 1000;
    op.progress.bytes_done = static_cast<std::uint64_t>(percent * 10);
    op.progress.percent = percent;
    op.progress.rate_bytes_per_s = migration_stage_terminal(stage) ? 0 : 100;
    op.progress.eta_s = migration_stage_terminal(stage) ? std::nullopt : std::optional(7.0);
    if (stage == MigrationStage::kDone) op.stage_ms = {10, 900, 50, 30, 10};
    if (more) more(op);
  }));
}

// Runs `steps[i]` at the i-th sleep.
void script(RouterIo& r, std::vector<std::function<void()>> steps) {
  auto next = std::make_shared<std::size_t>(0);
  r.on_sleep = [steps = std::move(steps), next] {
    REQUIRE(*next < steps.size());  // the follow must have ended by now
    steps[(*next)++]();
  };
}

const std::vector<std::string> kMigrate = {"migrate", "--shards", "3,7",   "--from",
                                           "node-1",  "--to",     "node-4"};

TEST_CASE("ctl follow: migrate follows each operation to done, in plain lines",
          "[ctl][migrate][follow]") {
  RouterIo r;
  script(r, {[&] {
               set(r, "op-1", MigrationStage::kTransfer, 30);
               set(r, "op-2", MigrationStage::kTransfer, 5);
             },
             [&] {
               set(r, "op-1", MigrationStage::kTransfer, 35);  // same 10%, 1s later: quiet
               set(r, "op-2", MigrationStage::kTransfer, 6, [](auto& op) { op.paused = true; });
             },
             [&] {
               set(r, "op-1", MigrationStage::kDone, 100);
               set(r, "op-2", MigrationStage::kVerify, 60, [](auto& op) { op.paused = false; });
             },
             [&] { set(r, "op-2", MigrationStage::kDone, 100); }});
  CHECK(r.run(parse_ok(kMigrate)) == kExitOk);
  CHECK(r.out ==
        "batch batch-1: 2 operations started\n"
        "op-1  shard 3  node-1 -> node-4  prepare  0%  -  ETA -\n"
        "op-2  shard 7  node-1 -> node-4  prepare  0%  -  ETA -\n"
        "op-1  shard 3  node-1 -> node-4  transfer  30%  100B/s  ETA 7s\n"
        "op-2  shard 7  node-1 -> node-4  transfer  5%  100B/s  ETA 7s\n"
        "op-2  shard 7  node-1 -> node-4  transfer  6%  100B/s  ETA 7s  [paused]\n"
        "op-1  shard 3  node-1 -> node-4  done  100%  in 1.0s  1000B\n"
        "op-2  shard 7  node-1 -> node-4  verify  60%  100B/s  ETA 7s\n"
        "op-2  shard 7  node-1 -> node-4  done  100%  in 1.0s  1000B\n"
        "2 of 2 operations done\n");
  CHECK(r.err.empty());
  CHECK(r.sleeps == std::vector<std::uint64_t>(4, kDefaultIntervalMs));
  CHECK(r.requests.front() == "POST /v1/migrations");
  CHECK(r.requests.size() == 1 + 5);  // one list per poll
  CHECK(r.api.last_migration_request()->shards == std::vector<ShardId>{ShardId(3), ShardId(7)});
}

TEST_CASE("ctl follow: on a terminal the lines are redrawn in place", "[ctl][migrate][follow]") {
  RouterIo r;
  r.terminal = true;
  r.width = 40;
  script(r, {[&] { set(r, "op-1", MigrationStage::kTransfer, 50); },
             [&] {
               set(r, "op-1", MigrationStage::kDone, 100);
               set(r, "op-2", MigrationStage::kDone, 100);
             }});
  CHECK(r.run(parse_ok(kMigrate)) == kExitOk);
  const std::string first_frame =
      "\r\x1b[2Kop-1  shard 3  node-1 -> node-4  prepar\n"
      "\r\x1b[2Kop-2  shard 7  node-1 -> node-4  prepar\n";
  CHECK(r.out.starts_with("batch batch-1: 2 operations started\n" + first_frame));
  // Every later frame goes back up the two lines and draws both again.
  CHECK(count(r.out, "\x1b[2A") == 2);
  CHECK(count(r.out, "\r\x1b[2K") == 6);
  CHECK_THAT(r.out, Catch::Contains("\x1b[2A\r\x1b[2Kop-1  shard 3  node-1 -> node-4  transf\n"));
  // ... and erases what a taller earlier frame may have left below.
  CHECK(count(r.out, "\x1b[J") == 3);
  CHECK_THAT(r.out, Catch::EndsWith("op-2  shard 7  node-1 -> node-4  done  \n\x1b[J"
                                    "2 of 2 operations done\n"));
}

TEST_CASE("ctl follow: a failed operation exits 7; --json prints the final statuses",
          "[ctl][migrate][follow]") {
  RouterIo r;
  r.api.set_planned_moves({{{ShardId(1)}, NodeId("node-2"), NodeId("node-4"), 0},
                           {{ShardId(6)}, NodeId("node-3"), NodeId("node-4"), 0}});
  script(r, {[&] {
           set(r, "op-1", MigrationStage::kDone, 100);
           set(r, "op-2", MigrationStage::kFailed, 40,
               [](auto& op) { op.error = "verify found 3 buckets different after 3 tries"; });
         }});
  CHECK(r.run(parse_ok({"rebalance", "--json"})) == kExitOther);
  boost::system::error_code ec;
  const boost::json::value out = boost::json::parse(r.out, ec);  // one object, nothing else
  REQUIRE_FALSE(ec);
  CHECK(out.at("id") == "batch-1");
  const auto& ops = out.at("migrations").as_array();
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].at("id") == "op-1");
  CHECK(ops[0].at("stage") == "done");
  CHECK(ops[1].at("stage") == "failed");
  CHECK(ops[1].at("progress").at("percent") == 40);
  CHECK(r.err ==
        "nodenomadctl: not every operation ended done: op-2 failed: verify found 3 buckets "
        "different after 3 tries\n");
}

TEST_CASE("ctl follow: polls that fail are retried, then given up", "[ctl][migrate][follow]") {
  RouterIo r;
  int refusals = 2;
  r.intercept = [&](const HttpRequestSpec& spec) -> std::optional<HttpResult> {
    if (spec.target == "/v1/migrations" && spec.method == "GET" && refusals-- > 0) {
      return failure(TransportFailure::kCannotConnect, "Connection refused");
    }
    return std::nullopt;
  };
  script(r, {[] {}, [] {},
             [&] {
               set(r, "op-1", MigrationStage::kDone, 100);
               set(r, "op-2", MigrationStage::kDone, 100);
             }});
  CHECK(r.run(parse_ok(kMigrate)) == kExitOk);
  // Said once per run of failures, not once per failed poll.
  CHECK(count(r.err, "cannot connect to 127.0.0.1:3000") == 1);

  RouterIo down;
  down.api.set_planned_moves({{{ShardId(1)}, NodeId("node-1"), NodeId("node-2"), 0}});
  down.intercept = [](const HttpRequestSpec& spec) -> std::optional<HttpResult> {
    if (spec.method == "GET")
      return reply(503, R"({"error":{"code":"unavailable","message":"x"}})");
    return std::nullopt;
  };
  CHECK(down.run(parse_ok({"drain", "node-1", "--interval", "5s"})) == kExitUnavailable);
  CHECK(down.sleeps == std::vector<std::uint64_t>(kMaxFailedPolls - 1, 5000));
  CHECK_THAT(down.err, Catch::EndsWith("nodenomadctl: stopped following batch batch-1; its "
                                       "operations go on in the cluster (nodenomadctl "
                                       "migrations)\n"));
}

TEST_CASE("ctl follow: an answer that cannot be retried ends the follow at once",
          "[ctl][migrate][follow]") {
  RouterIo r;
  r.intercept = [](const HttpRequestSpec& spec) -> std::optional<HttpResult> {
    if (spec.method == "GET") return reply(200, R"({"migrations": 3})");
    return std::nullopt;
  };
  CHECK(r.run(parse_ok(kMigrate)) == kExitOther);
  CHECK(r.sleeps.empty());
  CHECK_THAT(r.err, Catch::Contains("bad reply") && Catch::Contains("stopped following"));
}

TEST_CASE("ctl follow: an operation the list lacks is asked for on its own",
          "[ctl][migrate][follow]") {
  RouterIo r;
  r.intercept = [](const HttpRequestSpec& spec) -> std::optional<HttpResult> {
    if (spec.target == "/v1/migrations" && spec.method == "GET") {
      return reply(200, R"({"migrations": []})");
    }
    if (spec.target == "/v1/migrations/op-2") {
      return reply(404, R"({"error":{"code":"not_found","message":"no operation op-2"}})");
    }
    return std::nullopt;
  };
  CHECK(r.run(parse_ok(kMigrate)) == kExitNotFound);
  CHECK(r.requests == std::vector<std::string>{"POST /v1/migrations", "GET /v1/migrations",
                                               "GET /v1/migrations/op-1",
                                               "GET /v1/migrations/op-2"});
  CHECK_THAT(r.err, Catch::StartsWith("nodenomadctl: not_found: no operation op-2\n"));
}

TEST_CASE("ctl follow: --no-wait, nothing to move, and a refused start", "[ctl][migrate]") {
  RouterIo r;
  std::vector<std::string> no_wait = kMigrate;
  no_wait.push_back("--no-wait");
  CHECK(r.run(parse_ok(no_wait)) == kExitOk);
  CHECK(r.out == "batch batch-1: 2 operations started\nop-1\nop-2\n");
  CHECK(r.requests.size() == 1);

  RouterIo empty;
  CHECK(empty.run(parse_ok({"rebalance"})) == kExitOk);
  CHECK(empty.out == "nothing to move: no operation started\n");
  CHECK(empty.requests == std::vector<std::string>{"POST /v1/rebalance"});
  RouterIo empty_json;
  CHECK(empty_json.run(parse_ok({"rebalance", "--json"})) == kExitOk);
  CHECK(empty_json.out == "{\"id\":\"batch-1\",\"migrations\":[]}\n");

  RouterIo conflict;
  conflict.api.set_migration_status(Status::version_mismatch("shard 3 moved meanwhile"));
  CHECK(conflict.run(parse_ok(kMigrate)) == kExitVersionMismatch);
  CHECK(conflict.err ==
        "nodenomadctl: version_mismatch: shard 3 moved meanwhile; nothing started: run the "
        "command again\n");

  RouterIo unreachable;
  unreachable.intercept = [](const HttpRequestSpec&) -> std::optional<HttpResult> {
    return failure(TransportFailure::kNoReply, "timed out after 10000 ms");
  };
  CHECK(unreachable.run(parse_ok(kMigrate)) == kExitUnknownOutcome);
  CHECK_THAT(unreachable.err, Catch::Contains("it may or may not have been applied"));
}

TEST_CASE("ctl follow: the one-shot commands through the router", "[ctl][migrate]") {
  RouterIo r;
  std::vector<std::string> no_wait = kMigrate;
  no_wait.push_back("--no-wait");
  REQUIRE(r.run(parse_ok(no_wait)) == kExitOk);
  r.out.clear();
  CHECK(r.run(parse_ok({"pause", "op-2"})) == kExitOk);
  CHECK(r.out == "paused: op-2  shard 7  node-1 -> node-4  prepare  0%  -  ETA -  [paused]\n");
  CHECK(r.run(parse_ok({"bandwidth", "op-2", "20MB"})) == kExitOk);
  CHECK(r.api.migrations()[1].bandwidth_bytes_per_s == 20ull << 20);
  CHECK(r.run(parse_ok({"cancel", "op-1"})) == kExitOk);
  CHECK(r.api.migrations()[0].stage == MigrationStage::kCancelled);
  r.out.clear();
  CHECK(r.run(parse_ok({"migrations"})) == kExitOk);
  CHECK_THAT(r.out, Catch::Contains("cancelled on request") && Catch::Contains("paused"));
  CHECK(r.run(parse_ok({"migration", "op-404"})) == kExitNotFound);
  CHECK(r.run(parse_ok({"resume", "op-1"})) == kExitUsage);  // it has ended
}

TEST_CASE("ctl progress: plain lines come on change, each 10%, or when moved after 5s",
          "[ctl][migrate][follow]") {
  ProgressDisplay display(false, 80);
  OpView op;
  op.id = "op-1";
  op.stage = "transfer";
  op.percent = 11;
  op.bytes_done = 110;
  CHECK_FALSE(display.update({op}, 0).empty());
  op.percent = 19.9;
  op.bytes_done = 199;
  CHECK(display.update({op}, 4999).empty());        // same 10%, too soon
  CHECK_FALSE(display.update({op}, 5000).empty());  // moved, 5s since the last line
  CHECK(display.update({op}, 20'000).empty());      // not moved: nothing new to say
  op.percent = 20;
  op.bytes_done = 200;
  CHECK_FALSE(display.update({op}, 20'001).empty());  // another 10%
  op.queued = true;
  CHECK_FALSE(display.update({op}, 20'002).empty());  // a flag changed
  op.stage = "failed";
  CHECK_FALSE(display.update({op}, 20'003).empty());
  CHECK(display.update({op}, 90'000).empty());  // ended: said once
}

TEST_CASE("ctl progress: more operations than the terminal has rows", "[ctl][migrate][follow]") {
  std::vector<OpView> ops(6);
  const std::vector<std::string> stages = {"done", "transfer", "failed", "done", "verify", "done"};
  for (std::size_t i = 0; i < ops.size(); ++i) {
    ops[i].id = "op-" + std::to_string(i + 1);
    ops[i].stage = stages[i];
  }
  ProgressDisplay display(true, 30, 5);  // 5 rows: 3 operations and the summary fit
  const std::string first = display.update(ops, 0);
  CHECK(first ==
        "\r\x1b[2Kop-2  shard 0   ->   transfer\n"  // running first
        "\r\x1b[2Kop-5  shard 0   ->   verify  \n"  // cut to 29 columns
        "\r\x1b[2Kop-1  shard 0   ->   done  10\n"
        "\r\x1b[2K... and 3 more: 0 running, 2 \n"
        "\x1b[J");
  // All six fit once the terminal is taller; the next frame goes up the four
  // lines drawn before.
  ProgressDisplay tall(true, 200, 8);
  const std::string all = tall.update(ops, 0);
  CHECK(count(all, "\r\x1b[2K") == 6);
  CHECK(all.find("op-1") < all.find("op-2"));  // in order when nothing is left out
  CHECK(display.update(ops, 1).starts_with("\x1b[4A"));
}

TEST_CASE("ctl watch: status --watch redraws the tables and the running migrations",
          "[ctl][migrate][watch]") {
  RouterIo r;
  r.terminal = true;
  ClusterInfo cluster;
  cluster.cluster_id = "c1";
  cluster.nodes.push_back({NodeId("node-1"), "127.0.0.1:3000", "up", 1, 1});
  r.api.set_cluster(cluster);
  MigrationStatus running;
  running.id = "op-5";
  running.shard = ShardId(2);
  running.source = NodeId("node-1");
  running.target = NodeId("node-2");
  running.stage = MigrationStage::kTransfer;
  r.api.add_migration(running);
  MigrationStatus finished = running;
  finished.id = "op-4";
  finished.stage = MigrationStage::kDone;
  r.api.add_migration(finished);

  CHECK(r.run(parse_ok({"status", "--watch"}), 2) == kExitOk);
  CHECK(r.sleeps == std::vector<std::uint64_t>{1000});
  CHECK(count(r.out, "\x1b[H\x1b[2J") == 2);
  CHECK(
      r.out.starts_with("\x1b[H\x1b[2J127.0.0.1:3000, every 1s, 10:00:00 UTC (Ctrl-C stops)\n\n"
                        "cluster c1, metadata leader -\n\nNODE "));
  CHECK_THAT(r.out, Catch::Contains("\x1b[H\x1b[2J127.0.0.1:3000, every 1s, 10:00:01 UTC"));
  CHECK_THAT(r.out, Catch::Contains("\nOP    SHARD  FROM    TO      STAGE"));
  CHECK(count(r.out, "op-5  ") == 2);
  CHECK(count(r.out, "op-4") == 0);  // ended: not shown

  RouterIo plain;
  plain.api.set_migration_status(Status::not_supported("no migrations here"));
  plain.intercept = [&](const HttpRequestSpec& spec) -> std::optional<HttpResult> {
    if (spec.target == "/v1/cluster" && plain.sleeps.empty()) {
      return failure(TransportFailure::kCannotConnect, "Connection refused");
    }
    return std::nullopt;
  };
  CHECK(plain.run(parse_ok({"status", "--watch", "--interval", "2s"}), 2) == kExitOk);
  CHECK(plain.out.find('\x1b') == std::string::npos);
  CHECK_THAT(plain.out, Catch::Contains("every 2s, 10:00:00 UTC (Ctrl-C stops)\n\n"
                                        "nodenomadctl: cannot connect to 127.0.0.1:3000: "
                                        "Connection refused; nothing was sent\n\n"));
  CHECK_THAT(plain.out, Catch::Contains("every 2s, 10:00:02 UTC (Ctrl-C stops)\n\ncluster "));
  CHECK_THAT(plain.out, !Catch::Contains("migration"));  // the node does not serve them
}

// An operation of batch "m<n>" as the coordinator names them: "m<n>-s<shard>".
MigrationStatus op_on(std::string id, std::uint32_t shard, MigrationStage stage) {
  MigrationStatus op;
  op.batch_id = id.substr(0, id.find('-'));
  op.id = std::move(id);
  op.shard = ShardId(shard);
  op.source = NodeId("node-1");
  op.target = NodeId("node-4");
  op.stage = stage;
  if (stage == MigrationStage::kDone) op.progress.percent = 100;
  return op;
}

TEST_CASE("ctl watch: migrations --watch waits for a move, then follows it and the later ones",
          "[ctl][migrate][watch]") {
  RouterIo r;
  r.api.add_migration(op_on("m0-s1", 1, MigrationStage::kDone));  // ended before: left out
  script(r, {[] {},  // still nothing running
             [&] {
               // A join's rebalance starts two moves; one is already over by
               // the next poll (it is followed all the same).
               r.api.add_migration(op_on("m1-s2", 2, MigrationStage::kTransfer));
               r.api.add_migration(op_on("m1-s3", 3, MigrationStage::kDone));
             },
             [&] { set(r, "m1-s2", MigrationStage::kUpdate, 92); },
             [&] { set(r, "m1-s2", MigrationStage::kDone, 100); }});
  CHECK(r.run(parse_ok({"migrations", "--watch", "--interval", "500ms"})) == kExitOk);
  CHECK(r.err == "no migration running; waiting for one to start (Ctrl-C stops)\n");
  CHECK(r.out ==
        "m1-s2  shard 2  node-1 -> node-4  transfer  0%  -  ETA -\n"
        "m1-s3  shard 3  node-1 -> node-4  done  100%  in 0ms\n"
        "m1-s2  shard 2  node-1 -> node-4  update  92%  100B/s  ETA 7s\n"
        "m1-s2  shard 2  node-1 -> node-4  done  100%  in 1.0s  1000B\n"
        "2 of 2 operations done\n");
  CHECK(r.sleeps == std::vector<std::uint64_t>(4, 500));
  CHECK(std::all_of(r.requests.begin(), r.requests.end(),
                    [](const std::string& q) { return q == "GET /v1/migrations"; }));
}

TEST_CASE("ctl watch: migrations --watch follows what runs at the start; a failure exits 7",
          "[ctl][migrate][watch]") {
  RouterIo r;
  r.api.add_migration(op_on("m3-s0", 0, MigrationStage::kDone));
  r.api.add_migration(op_on("m4-s5", 5, MigrationStage::kTransfer));
  r.api.add_migration(op_on("m4-s6", 6, MigrationStage::kPrepare));
  script(r, {[&] {
               set(r, "m4-s5", MigrationStage::kDone, 100);
               set(r, "m4-s6", MigrationStage::kFailed, 0,
                   [](auto& op) { op.error = "the transfer stage made no progress for 30000 ms"; });
             }});
  CHECK(r.run(parse_ok({"migrations", "--watch"})) == kExitOther);
  CHECK_THAT(r.out, !Catch::Contains("m3-s0"));  // its batch has ended
  CHECK_THAT(r.out, Catch::EndsWith("1 of 2 operations done\n"));
  CHECK(r.err ==
        "nodenomadctl: not every operation ended done: m4-s6 failed: the transfer stage made no "
        "progress for 30000 ms\n");

  // --json: no progress, then the followed operations' final statuses.
  RouterIo json;
  json.api.add_migration(op_on("m4-s5", 5, MigrationStage::kTransfer));
  script(json, {[&] { set(json, "m4-s5", MigrationStage::kDone, 100); }});
  CHECK(json.run(parse_ok({"migrations", "--watch", "--json"})) == kExitOk);
  const boost::json::value doc = boost::json::parse(json.out);
  CHECK_FALSE(doc.as_object().contains("id"));
  REQUIRE(doc.at("migrations").as_array().size() == 1);
  CHECK(doc.at("migrations").at(0).at("stage") == "done");
}

TEST_CASE("ctl watch: migrations --watch shows a running batch whole, its ended moves too",
          "[ctl][migrate][watch]") {
  RouterIo r;
  r.api.add_migration(op_on("m4-s1", 1, MigrationStage::kDone));  // a batch that has ended
  r.api.add_migration(op_on("m5-s2", 2, MigrationStage::kDone));  // ended before the watch
  r.api.add_migration(op_on("m5-s3", 3, MigrationStage::kTransfer));
  script(r, {[&] { set(r, "m5-s3", MigrationStage::kDone, 100); }});
  CHECK(r.run(parse_ok({"migrations", "--watch"})) == kExitOk);
  CHECK(r.out ==
        "m5-s2  shard 2  node-1 -> node-4  done  100%  in 0ms\n"
        "m5-s3  shard 3  node-1 -> node-4  transfer  0%  -  ETA -\n"
        "m5-s3  shard 3  node-1 -> node-4  done  100%  in 1.0s  1000B\n"
        "2 of 2 operations done\n");
}

TEST_CASE("ctl watch: migrations --watch retries a poll that failed, and gives up on a 404",
          "[ctl][migrate][watch]") {
  RouterIo r;
  r.api.add_migration(op_on("m4-s5", 5, MigrationStage::kTransfer));
  int polls = 0;
  r.intercept = [&](const HttpRequestSpec&) -> std::optional<HttpResult> {
    ++polls;
    if (polls == 2 || polls == 3) return failure(TransportFailure::kNoReply, "reset");
    return std::nullopt;
  };
  script(r, {[] {}, [] {}, [&] { set(r, "m4-s5", MigrationStage::kDone, 100); }});
  CHECK(r.run(parse_ok({"migrations", "--watch"})) == kExitOk);
  CHECK(count(r.err, "reset") == 1);  // said once per run of failures
  CHECK_THAT(r.out, Catch::EndsWith("1 of 1 operation done\n"));

  RouterIo old;
  old.api.set_migration_status(Status::not_supported("no migrations here"));
  CHECK(old.run(parse_ok({"migrations", "--watch"})) == kExitOther);
  CHECK_THAT(old.err, Catch::Contains("stopped watching"));

  // A bounded wait (tests): nothing ever runs.
  RouterIo idle;
  CHECK(idle.run(parse_ok({"migrations", "--watch"}), 3) == kExitOk);
  CHECK(idle.sleeps.size() == 2);
  CHECK(idle.out.empty());
}

}  // namespace
}  // namespace nodenomad::ctl
