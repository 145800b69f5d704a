// The command lines of nodenomadctl's migration commands and the request
// each one makes.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ctl_test_support.hpp"
#include "migrate_cli.hpp"

namespace nodenomad::ctl {
namespace {

using testing::is_migrate;
using testing::parse;
using testing::parse_ok;

std::string parse_error(std::vector<std::string> args) {
  auto inv = parse(std::move(args));
  REQUIRE_FALSE(inv.is_ok());
  CHECK(inv.status().is(StatusCode::kInvalidArgument));
  return std::string(inv.status().message());
}

TEST_CASE("ctl migrate: which command lines are migration commands", "[ctl][migrate]") {
  CHECK(is_migrate({"migrate", "--shards", "3"}));
  CHECK(is_migrate({"--endpoint", "127.0.0.1:3001", "rebalance"}));
  CHECK(is_migrate({"--json", "--timeout-ms=5", "drain", "node-2"}));
  for (const char* word : {"migrations", "migration", "cancel", "pause", "resume", "bandwidth"}) {
    CHECK(is_migrate({word}));
  }
  CHECK(is_migrate({"status", "--watch"}));
  CHECK(is_migrate({"--interval", "2s", "status"}));
  CHECK_FALSE(is_migrate({"status"}));
  CHECK_FALSE(is_migrate({"status", "--json"}));
  CHECK_FALSE(is_migrate({"put", "migrate", "v"}));
  CHECK_FALSE(is_migrate({"get", "--", "cancel"}));
  CHECK_FALSE(is_migrate({"--endpoint", "migrations", "status"}));  // the endpoint's value
  CHECK_FALSE(is_migrate({"--ttl", "5", "put", "k", "pause"}));
  CHECK_FALSE(is_migrate({}));
  CHECK(is_migrate({"--", "migrations"}));
}

TEST_CASE("ctl migrate: migrate reads shards, nodes, bandwidth and how to wait", "[ctl][migrate]") {
  const MigrateInvocation a = parse_ok(
      {"migrate", "--shards", "3,7", "--from", "node-1", "--to=node-4", "--bandwidth", "50MB"});
  CHECK(a.command == MigrateCommand::kMigrate);
  CHECK(a.shards == std::vector<std::uint32_t>{3, 7});
  CHECK(a.source == "node-1");
  CHECK(a.target == "node-4");
  CHECK(a.bandwidth_bytes_per_s == 50ull << 20);
  CHECK(a.wait);
  CHECK(a.interval_ms == kDefaultIntervalMs);

  const MigrateInvocation b = parse_ok({"--no-wait", "--shards=0-2,9", "--to", "n4", "migrate",
                                        "--from", "n1", "--interval", "250ms"});
  CHECK(b.shards == std::vector<std::uint32_t>{0, 1, 2, 9});
  CHECK_FALSE(b.wait);
  CHECK(b.interval_ms == 250);
  CHECK(b.bandwidth_bytes_per_s == 0);
}

TEST_CASE("ctl migrate: the other commands and their words", "[ctl][migrate]") {
  CHECK(parse_ok({"rebalance", "--no-wait"}).command == MigrateCommand::kRebalance);
  const MigrateInvocation drain = parse_ok({"drain", "node-2", "--interval=2s"});
  CHECK(drain.command == MigrateCommand::kDrain);
  CHECK(drain.node == "node-2");
  CHECK(drain.interval_ms == 2000);
  CHECK(parse_ok({"migrations"}).command == MigrateCommand::kList);
  const MigrateInvocation show = parse_ok({"migration", "op-12"});
  CHECK(show.command == MigrateCommand::kShow);
  CHECK(show.operation == "op-12");
  CHECK(parse_ok({"cancel", "op-1"}).command == MigrateCommand::kCancel);
  CHECK(parse_ok({"pause", "op-1"}).command == MigrateCommand::kPause);
  CHECK(parse_ok({"resume", "op-1"}).command == MigrateCommand::kResume);
  const MigrateInvocation bandwidth = parse_ok({"bandwidth", "op-3", "20MB/s"});
  CHECK(bandwidth.command == MigrateCommand::kBandwidth);
  CHECK(bandwidth.operation == "op-3");
  CHECK(bandwidth.bandwidth_bytes_per_s == 20ull << 20);
  const MigrateInvocation watch = parse_ok({"status", "--watch", "--interval", "5s"});
  CHECK(watch.command == MigrateCommand::kStatusWatch);
  CHECK(watch.interval_ms == 5000);
  // An operation id may start with '-' after --.
  CHECK(parse_ok({"migration", "--", "-odd"}).operation == "-odd");
}

TEST_CASE("ctl migrate: global options behave as for every command", "[ctl][migrate]") {
  const MigrateInvocation a =
      parse_ok({"migrations", "--json", "--timeout-ms", "1500"}, {{"NODENOMAD_ENDPOINT", "h:9"}});
  CHECK(a.globals.json);
  CHECK(a.globals.timeout_ms == 1500);
  CHECK(a.globals.endpoint.to_string() == "h:9");
  CHECK(parse_ok({"--endpoint=http://10.0.0.1:3002/", "rebalance"}).globals.endpoint.to_string() ==
        "10.0.0.1:3002");
  CHECK(parse_ok({"migrations", "-v"}).globals.verbose);
  // --help wins over everything else, as parse_ctl_args has it.
  CHECK(parse_ok({"migrate", "--shards", "x", "--help"}).command == MigrateCommand::kHelp);
}

TEST_CASE("ctl migrate: usage errors say what is wrong", "[ctl][migrate]") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"migrate", "--shards", "3"}, "migrate needs --shards, --from and --to"},
      {{"migrate", "--shards"}, "--shards needs a value"},
      {{"migrate", "--shards", "3,3", "--from", "a", "--to", "b"}, "shard 3 is listed twice"},
      {{"migrate", "--shards", "", "--from", "a", "--to", "b"}, "an empty entry"},
      {{"migrate", "--shards", "1", "--from", "a b", "--to", "b"}, "--from=\"a b\": not a node id"},
      {{"migrate", "--shards", "1", "--from", "a", "--to", "b", "--bandwidth", "0"},
       "--bandwidth=\"0\": a bandwidth is at least 1 byte per second"},
      {{"migrate", "--shards", "1", "--shards", "2", "--from", "a", "--to", "b"},
       "--shards given twice"},
      {{"migrate", "extra", "--shards", "1", "--from", "a", "--to", "b"},
       "1 argument given, 0 expected; usage: nodenomadctl migrate"},
      {{"rebalance", "--shards", "1"}, "--shards applies to migrate only"},
      {{"drain"}, "0 arguments given, 1 expected; usage: nodenomadctl drain NODE"},
      {{"drain", "a/b"}, "NODE=\"a/b\": not a node id"},
      {{"migration"}, "usage: nodenomadctl migration OP"},
      {{"cancel", ""}, "OP=\"\": an operation id is 1 to 256 bytes"},
      {{"pause", "op-1", "--no-wait"}, "--no-wait applies to migrate, rebalance and drain"},
      {{"migrations", "--interval", "1s"}, "--interval applies to migrate, rebalance, drain"},
      {{"bandwidth", "op-1"}, "usage: nodenomadctl bandwidth OP SIZE"},
      {{"bandwidth", "op-1", "fast"}, "SIZE=\"fast\": not a size"},
      {{"status", "--interval", "1s"}, "--interval applies to status only with --watch"},
      {{"status", "--watch", "--interval", "10ms"}, "expected 100ms to 1h"},
      {{"status", "--watch", "--interval", "1"}, "--interval=\"1\""},
      {{"status", "--watch", "--json"}, "scripts poll `status --json`"},
      {{"rebalance", "--watch"}, "--watch applies to status and migrations only"},
      {{"migration", "op-1", "--watch"}, "--watch applies to status and migrations only"},
      {{"migrations", "--rate", "5"}, "--rate applies to load only"},
      {{"load", "--shards", "1"}, "--shards applies to migrate only"},
      {{"load", "--interval", "1s"}, "--interval applies to migrate, rebalance, drain"},
      {{"load", "--no-wait"}, "--no-wait applies to migrate, rebalance and drain"},
      {{"load", "extra"}, "1 argument given, 0 expected; usage: nodenomadctl load"},
      {{"load", "--rate", "0"}, "--rate=\"0\": expected a whole number from 1 to 100000"},
      {{"load", "--rate", "200/s"}, "--rate=\"200/s\": expected a whole number"},
      {{"load", "--rate", "100001"}, "from 1 to 100000"},
      {{"load", "--keys", "0"}, "--keys=\"0\": expected a whole number from 1 to 1000000000"},
      {{"load", "--connections", "65"},
       "--connections=\"65\": expected a whole number from 1 to 64"},
      {{"load", "--duration", "60"}, "--duration=\"60\": not a duration"},
      {{"load", "--duration", "50ms"}, "expected 100ms to 24h"},
      {{"load", "--duration", "25h"}, "expected 100ms to 24h"},
      {{"load", "--value-size", "2MB"}, "--value-size=\"2MB\": expected 1B to 1MB"},
      {{"load", "--value-size", "0"}, "expected 1B to 1MB"},
      {{"load", "--key-prefix="}, "--key-prefix=\"\": a key prefix is 1 to 256 bytes"},
      {{"load", "--rate", "1", "--rate", "2"}, "--rate given twice"},
      {{"rebalance", "--watch=yes"}, "--watch takes no value"},
      {{"rebalance", "--nowait"}, "unknown option \"--nowait\""},
      {{"rebalance", "--ttl", "5"}, "--ttl applies to put only"},
      {{"rebalance", "--endpoint", "https://h:1"}, "https is not supported"},
  };
  for (const auto& [args, expected] : cases) {
    INFO(fmt::format("{}", fmt::join(args, " ")));
    CHECK_THAT(parse_error(args), Catch::Contains(expected));
  }
}

TEST_CASE("ctl migrate: migrations --watch and load are read with their options",
          "[ctl][migrate][load]") {
  CHECK(is_migrate({"load"}));
  CHECK(is_migrate({"--endpoint", "127.0.0.1:3001", "load", "--rate", "5"}));
  CHECK(is_migrate({"migrations", "--watch"}));

  const MigrateInvocation watch = parse_ok({"migrations", "--watch", "--interval", "500ms"});
  CHECK(watch.command == MigrateCommand::kWatchList);
  CHECK(watch.interval_ms == 500);
  CHECK(parse_ok({"migrations"}).command == MigrateCommand::kList);
  CHECK(parse_ok({"--json", "migrations", "--watch"}).command == MigrateCommand::kWatchList);

  const MigrateInvocation defaults = parse_ok({"load"});
  CHECK(defaults.command == MigrateCommand::kLoad);
  CHECK(defaults.load.rate_per_s == 200);
  CHECK(defaults.load.duration_ms == 0);  // until Ctrl-C
  CHECK(defaults.load.keys == 1000);
  CHECK(defaults.load.connections == 2);
  CHECK(defaults.load.value_bytes == 100);
  CHECK(defaults.load.key_prefix == "load-");

  const MigrateInvocation load =
      parse_ok({"load", "--rate", "50", "--duration=1m30s", "--keys", "7", "--connections", "3",
                "--value-size", "4KB", "--key-prefix", "demo/", "--endpoint", "127.0.0.1:3002",
                "--timeout-ms", "2000", "--json"});
  CHECK(load.load.rate_per_s == 50);
  CHECK(load.load.duration_ms == 90'000);
  CHECK(load.load.keys == 7);
  CHECK(load.load.connections == 3);
  CHECK(load.load.value_bytes == 4096);
  CHECK(load.load.key_prefix == "demo/");
  CHECK(load.globals.endpoint.port == 3002);
  CHECK(load.globals.timeout_ms == 2000);
  CHECK(load.globals.json);
}

TEST_CASE("ctl migrate: each command's request", "[ctl][migrate]") {
  const auto request = [](std::vector<std::string> args) {
    return build_migrate_request(parse_ok(std::move(args)));
  };
  const HttpRequestSpec migrate =
      request({"migrate", "--shards", "3,7", "--from", "node-1", "--to", "node-4"});
  CHECK(migrate.method == "POST");
  CHECK(migrate.target == "/v1/migrations");
  CHECK(migrate.body == R"({"shards":[3,7],"source":"node-1","target":"node-4"})");
  CHECK(migrate.content_type == "application/json");
  CHECK(request({"migrate", "--shards", "1", "--from", "a", "--to", "b", "--bandwidth", "1KB"})
            .body == R"({"shards":[1],"source":"a","target":"b","bandwidth_bytes_per_s":1024})");

  const HttpRequestSpec rebalance = request({"rebalance"});
  CHECK(rebalance.method == "POST");
  CHECK(rebalance.target == "/v1/rebalance");
  CHECK(rebalance.body.empty());
  CHECK(rebalance.content_type.empty());
  CHECK(request({"drain", "node-2"}).method == "DELETE");
  CHECK(request({"drain", "node-2"}).target == "/v1/cluster/nodes/node-2");
  CHECK(request({"migrations"}).target == "/v1/migrations");
  CHECK(request({"migration", "op/1 x"}).target == "/v1/migrations/op%2F1%20x");
  CHECK(request({"cancel", "op-1"}).method == "DELETE");
  CHECK(request({"cancel", "op-1"}).target == "/v1/migrations/op-1");
  CHECK(request({"pause", "op-1"}).target == "/v1/migrations/op-1/pause");
  CHECK(request({"pause", "op-1"}).method == "POST");
  CHECK(request({"resume", "op-1"}).target == "/v1/migrations/op-1/resume");
  const HttpRequestSpec bandwidth = request({"bandwidth", "op-1", "2MB"});
  CHECK(bandwidth.method == "PUT");
  CHECK(bandwidth.target == "/v1/migrations/op-1/bandwidth");
  CHECK(bandwidth.body == R"({"bytes_per_s":2097152})");
}

TEST_CASE("ctl migrate: --help lists the migration commands", "[ctl][migrate]") {
  const std::string help = full_help();
  const std::size_t commands = help.find("Migration commands:");
  const std::size_t options = help.find("Options (");
  REQUIRE(commands != std::string::npos);
  REQUIRE(options != std::string::npos);
  CHECK(commands < options);  // with the other commands, before the options
  CHECK(help.starts_with(ctl_help().substr(0, 40)));
  for (const char* text :
       {"migrate --shards 3,7 --from NODE --to NODE", "rebalance [--no-wait]", "drain NODE",
        "migrations", "migration OP", "cancel OP", "bandwidth OP SIZE",
        "status --watch [--interval 1s]", "migrations --watch [--interval 1s]",
        "load [--rate 200] [--duration 60s]", "Migration commands exit 0 when every operation"}) {
    CHECK_THAT(help, Catch::Contains(text));
  }
}

}  // namespace
}  // namespace nodenomad::ctl
