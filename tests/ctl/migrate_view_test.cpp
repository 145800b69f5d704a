// Operations read from the server's JSON (written here by the server's own
// encoder, so both sides are held to one shape), the progress line, the
// table and the details, and what each one-shot command prints and exits.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "ctl_test_support.hpp"
#include "http/http_migration_json.hpp"
#include "migrate_cli.hpp"

namespace nodenomad::ctl {
namespace {

using testing::parse_ok;

MigrationStatus transferring() {
  MigrationStatus op;
  op.id = "op-9";
  op.batch_id = "batch-4";
  op.shard = ShardId(3);
  op.source = NodeId("node-1");
  op.target = NodeId("node-4");
  op.stage = MigrationStage::kTransfer;
  op.progress = {1000, 425, 10, 4, 42.5, 1536, 0.37};
  op.started_at_ms = 1'764'151'200'123;
  op.stage_ms = {15, 2000};
  return op;
}

MigrationStatus ended(MigrationStage stage, std::string error) {
  MigrationStatus op = transferring();
  op.stage = stage;
  op.error = std::move(error);
  op.progress.percent = stage == MigrationStage::kDone ? 100 : 42.5;
  op.finished_at_ms = op.started_at_ms + 72'000;
  op.stage_ms = {15, 60'000, 1000, 985, 10'000};
  return op;
}

OpView view(const MigrationStatus& status) {
  auto op = parse_op(net::migration_status_json(status));
  INFO(op.status().to_string());
  REQUIRE(op.is_ok());
  return std::move(op).value();
}

HttpReply http(unsigned status, std::string body) {
  return HttpReply{status, std::move(body), std::nullopt, std::nullopt};
}

TEST_CASE("ctl view: an operation read from the server's JSON", "[ctl][migrate]") {
  MigrationStatus status = transferring();
  status.paused = true;
  status.bandwidth_bytes_per_s = 1 << 20;
  const OpView op = view(status);
  CHECK(op.id == "op-9");
  CHECK(op.batch_id == "batch-4");
  CHECK(op.shard == 3);
  CHECK(op.source == "node-1");
  CHECK(op.target == "node-4");
  CHECK(op.stage == "transfer");
  CHECK(op.bytes_total == 1000);
  CHECK(op.bytes_done == 425);
  CHECK(op.keys_total == 10);
  CHECK(op.keys_done == 4);
  CHECK(op.percent == 42.5);
  CHECK(op.rate_bytes_per_s == 1536);
  CHECK(op.eta_s == 0.4);
  CHECK(op.started_at == "2025-11-26T10:00:00.123Z");
  CHECK(op.finished_at.empty());
  CHECK(op.error.empty());
  CHECK(op.paused);
  CHECK_FALSE(op.queued);
  CHECK(op.bandwidth_bytes_per_s == 1 << 20);
  REQUIRE(op.stage_ms.size() == 5);
  CHECK(op.stage_ms[1] == std::pair<std::string, std::uint64_t>{"transfer", 2000});
  CHECK_FALSE(op.ended());
  CHECK(boost::json::parse(op.json) == boost::json::parse(net::migration_status_json(status)));

  CHECK(view(ended(MigrationStage::kDone, "")).ended());
  CHECK(view(ended(MigrationStage::kCancelled, "x")).ended());
  CHECK_FALSE(parse_op(R"({"id": "op-1"})").is_ok());    // no stage
  CHECK_FALSE(parse_op(R"([{"id": "op-1"}])").is_ok());  // not an object
  CHECK_FALSE(parse_op("nonsense").is_ok());
  // Fields it does not know, or of the wrong type, are left aside.
  const auto odd = parse_op(R"({"id":"op-1","stage":"verify","shard":"3","new":1,"progress":7})");
  REQUIRE(odd.is_ok());
  CHECK(odd->shard == 0);
  CHECK(odd->percent == 0);
}

TEST_CASE("ctl view: the progress line of each state", "[ctl][migrate]") {
  CHECK(progress_line(view(transferring())) ==
        "op-9  shard 3  node-1 -> node-4  transfer  42.5%  1.5KB/s  ETA 1s");
  MigrationStatus flags = transferring();
  flags.paused = true;
  flags.queued = true;
  flags.cancel_requested = true;
  flags.progress.eta_s.reset();
  flags.progress.rate_bytes_per_s = 0;
  CHECK(progress_line(view(flags)) ==
        "op-9  shard 3  node-1 -> node-4  transfer  42.5%  -  ETA -  [queued, paused, cancelling]");
  CHECK(progress_line(view(ended(MigrationStage::kDone, ""))) ==
        "op-9  shard 3  node-1 -> node-4  done  100%  in 1m12s  1000B");
  CHECK(progress_line(view(ended(MigrationStage::kFailed, "verify: digests differ"))) ==
        "op-9  shard 3  node-1 -> node-4  failed: verify: digests differ");
  // Control bytes from the server never reach the terminal.
  CHECK(progress_line(view(ended(MigrationStage::kCancelled, "a\x1b[2Jb\n"))) ==
        "op-9  shard 3  node-1 -> node-4  cancelled: a?[2Jb?");
}

TEST_CASE("ctl view: the migrations table and one operation's details", "[ctl][migrate]") {
  MigrationStatus second = ended(MigrationStage::kFailed, "timed out in transfer");
  second.id = "op-10";
  second.shard = ShardId(17);
  CHECK(migrations_table({view(transferring()), view(second)}) ==
        "OP     SHARD  FROM    TO      STAGE      DONE     RATE  ETA  NOTE\n"
        "op-9       3  node-1  node-4  transfer  42.5%  1.5KB/s   1s\n"
        "op-10     17  node-1  node-4  failed    42.5%        -    -  timed out in transfer\n");
  CHECK(migrations_table({}) == "no migrations\n");

  MigrationStatus status = ended(MigrationStage::kDone, "");
  status.verify_mismatches = 1;
  status.bytes_freed = 2048;
  status.bandwidth_bytes_per_s = 50 << 20;
  CHECK(migration_details(view(status)) ==
        "operation  op-9 (batch batch-4)\n"
        "shard      3: node-1 -> node-4\n"
        "stage      done\n"
        "progress   100%: 425B of 1000B, 4 of 10 keys\n"
        "rate       1.5KB/s, ETA 1s\n"
        "bandwidth  50.0MB/s (this operation)\n"
        "started    2025-11-26T10:00:00.123Z\n"
        "finished   2025-11-26T10:01:12.123Z\n"
        "stages     prepare 15ms, transfer 1m00s, verify 1.0s, update 985ms, cleanup 10.0s\n"
        "verify     1 mismatching bucket re-sent\n"
        "freed      2.0KB\n"
        "error      -\n");
}

TEST_CASE("ctl view: what the one-shot commands print", "[ctl][migrate]") {
  const std::string op = net::migration_status_json(transferring());
  const CtlOutput list =
      render_migrate_reply(parse_ok({"migrations"}), http(200, "{\"migrations\":[" + op + "]}"));
  CHECK(list.exit_code == kExitOk);
  CHECK_THAT(list.out, Catch::StartsWith("OP    SHARD") && Catch::Contains("op-9"));
  CHECK(list.err.empty());
  CHECK(render_migrate_reply(parse_ok({"migration", "op-9"}), http(200, op))
            .out.starts_with("operation  op-9 (batch batch-4)\n"));
  CHECK(render_migrate_reply(parse_ok({"cancel", "op-9"}), http(202, op)).out ==
        "cancel requested: op-9  shard 3  node-1 -> node-4  transfer  42.5%  1.5KB/s  ETA 1s\n");
  CHECK(render_migrate_reply(parse_ok({"pause", "op-9"}), http(200, op))
            .out.starts_with("paused: op-9"));
  CHECK(render_migrate_reply(parse_ok({"resume", "op-9"}), http(200, op))
            .out.starts_with("resumed: op-9"));
  MigrationStatus throttled = transferring();
  throttled.bandwidth_bytes_per_s = 2 << 20;
  CHECK(render_migrate_reply(parse_ok({"bandwidth", "op-9", "2MB"}),
                             http(200, net::migration_status_json(throttled)))
            .out.starts_with("bandwidth 2.0MB/s: op-9"));
  const CtlOutput started =
      render_migrate_reply(parse_ok({"rebalance", "--no-wait"}),
                           http(202, R"({"id":"batch-1","operations":["op-1","op-2"]})"));
  CHECK(started.out == "batch batch-1: 2 operations started\nop-1\nop-2\n");
  CHECK(render_migrate_reply(parse_ok({"drain", "n1", "--no-wait"}),
                             http(202, R"({"id":"batch-2","operations":[]})"))
            .out == "nothing to move: no operation started\n");
  // --json: the server's own body, one object per run.
  const CtlOutput json =
      render_migrate_reply(parse_ok({"migration", "op-9", "--json"}), http(200, op));
  CHECK(json.out == op + "\n");
}

TEST_CASE("ctl view: errors keep their code and exit as the table says", "[ctl][migrate]") {
  const auto error = [](unsigned status, std::string_view code) {
    return http(status, fmt::format(R"({{"error":{{"code":"{}","message":"because"}}}})", code));
  };
  const MigrateInvocation show = parse_ok({"migration", "op-1"});
  const MigrateInvocation cancel = parse_ok({"cancel", "op-1"});
  const MigrateInvocation migrate =
      parse_ok({"migrate", "--shards", "1", "--from", "a", "--to", "b"});

  const CtlOutput missing = render_migrate_reply(show, error(404, "not_found"));
  CHECK(missing.exit_code == kExitNotFound);
  CHECK(missing.err == "nodenomadctl: not_found: because\n");
  CHECK(missing.out.empty());
  CHECK(render_migrate_reply(migrate, error(400, "invalid_argument")).exit_code == kExitUsage);
  const CtlOutput conflict = render_migrate_reply(migrate, error(409, "version_mismatch"));
  CHECK(conflict.exit_code == kExitVersionMismatch);
  CHECK_THAT(conflict.err, Catch::EndsWith("nothing started: run the command again\n"));
  const CtlOutput busy = render_migrate_reply(cancel, error(503, "unavailable"));
  CHECK(busy.exit_code == kExitUnavailable);
  CHECK_THAT(busy.err, Catch::Contains("not applied, safe to retry"));
  CHECK_THAT(render_migrate_reply(cancel, error(504, "timeout")).err,
             Catch::Contains("may or may not have been applied"));
  CHECK_THAT(render_migrate_reply(show, error(504, "timeout")).err,
             !Catch::Contains("may or may not"));
  CHECK(render_migrate_reply(show, error(504, "timeout")).exit_code == kExitUnknownOutcome);
  CHECK(render_migrate_reply(show, error(501, "not_implemented")).exit_code == kExitOther);
  // Not the error shape: the status becomes the code, the body is shown safely.
  const CtlOutput odd = render_migrate_reply(show, http(502, "bad\x1b gateway"));
  CHECK(odd.exit_code == kExitOther);
  CHECK(odd.err == "nodenomadctl: http_502: bad? gateway\n");
  // --json: the error object on stdout too.
  const CtlOutput json =
      render_migrate_reply(parse_ok({"migrations", "--json"}), http(502, "gateway"));
  CHECK(boost::json::parse(json.out).at("error").at("code") == "http_502");
  // A 2xx whose body is not what the API promises.
  const CtlOutput bad = render_migrate_reply(show, http(200, R"({"id": 5})"));
  CHECK(bad.exit_code == kExitOther);
  CHECK_THAT(bad.err, Catch::Contains("bad reply from 127.0.0.1:3000"));
}

TEST_CASE("ctl view: transport failures", "[ctl][migrate]") {
  const MigrateInvocation pause = parse_ok({"pause", "op-1", "--json"});
  const CtlOutput refused =
      render_migrate_failure(pause, TransportFailure::kCannotConnect, "Connection refused");
  CHECK(refused.exit_code == kExitCannotConnect);
  CHECK(refused.err ==
        "nodenomadctl: cannot connect to 127.0.0.1:3000: Connection refused; nothing was sent\n");
  CHECK(boost::json::parse(refused.out).at("error").at("code") == "cannot_connect");
  const CtlOutput lost = render_migrate_failure(pause, TransportFailure::kNoReply, "timed out");
  CHECK(lost.exit_code == kExitUnknownOutcome);
  CHECK_THAT(lost.err, Catch::Contains("it may or may not have been applied"));
  CHECK(render_migrate_failure(parse_ok({"migrations"}), TransportFailure::kNoReply, "x").err ==
        "nodenomadctl: no answer from 127.0.0.1:3000: x\n");
  CHECK(render_migrate_failure(pause, TransportFailure::kBadReply, "x").exit_code == kExitOther);
}

}  // namespace
}  // namespace nodenomad::ctl
