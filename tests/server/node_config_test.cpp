#include "nodenomad/server/node_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace nodenomad {
namespace {

using Env = std::map<std::string, std::string>;

// A config file in a fresh temp directory, removed at scope exit.
struct TempConfigFile {
  std::string dir;
  std::string path;
  explicit TempConfigFile(const std::string& text) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nn-config-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    path = dir + "/node.conf";
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempConfigFile() { std::filesystem::remove_all(dir); }
};

Result<NodeConfig> load(std::vector<std::string> args, Env env = {}) {
  std::vector<const char*> argv = {"nodenomad-node"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return load_node_config(static_cast<int>(argv.size()), argv.data(), env_from_map(env));
}

NodeConfig load_ok(std::vector<std::string> args, Env env = {}) {
  auto config = load(std::move(args), std::move(env));
  INFO(config.status().to_string());
  REQUIRE(config.is_ok());
  return std::move(config).value();
}

std::string load_error(std::vector<std::string> args, Env env = {}) {
  auto config = load(std::move(args), std::move(env));
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().is(StatusCode::kInvalidArgument));
  return std::string(config.status().message());
}

// One value for every setting, none of them the default.
const Env kCustom = {
    {"NODE_ID", "node-2"},
    {"NODE_PORT", "3001"},
    {"BIND_HOST", "0.0.0.0"},
    {"CLUSTER_NODES", "node-1@127.0.0.1:3000,node-2@127.0.0.1:3001"},
    {"CLUSTER_ID", "prod-eu"},
    {"JOIN", "127.0.0.1:3000"},
    {"DATA_DIR", "/var/lib/nn"},
    {"WAL_DIR", "/fast/wal"},
    {"MAX_WAL_SIZE", "512MB"},
    {"MAX_CONCURRENT_MIGRATIONS", "5"},
    {"MIGRATION_CHUNK_SIZE", "64KiB"},
    {"MIGRATION_TIMEOUT", "2m"},
    {"MAINTENANCE_INTERVAL", "1500ms"},
    {"SNAPSHOT_COMPRESSION", "off"},
    {"SHARD_COUNT", "128"},
    {"REPLICATION_FACTOR", "5"},
    {"LOG_LEVEL", "debug"},
    {"MAX_VALUE_SIZE", "4MB"},
    {"MAX_CONNECTIONS", "64"},
    {"REQUEST_TIMEOUT", "500ms"},
    {"HTTP_IDLE_TIMEOUT", "1m30s"},
};

void check_custom(const NodeConfig& c) {
  CHECK(c.node_id == NodeId("node-2"));
  CHECK(c.node_port == 3001);
  CHECK(c.bind_host == "0.0.0.0");
  REQUIRE(c.cluster_nodes.size() == 2);
  CHECK(c.cluster_nodes[1] == ClusterMember{NodeId("node-2"), "127.0.0.1", 3001});
  CHECK(c.cluster_id == "prod-eu");
  REQUIRE(c.join.has_value());
  CHECK(*c.join == HostPort{"127.0.0.1", 3000});
  CHECK(c.data_dir == "/var/lib/nn");
  CHECK(c.wal_dir == "/fast/wal");
  CHECK(c.max_wal_bytes == 512ull << 20);
  CHECK(c.max_concurrent_migrations == 5);
  CHECK(c.migration_chunk_bytes == 64u << 10);
  CHECK(c.migration_timeout_ms == 120'000);
  CHECK(c.maintenance_interval_ms == 1'500);
  CHECK_FALSE(c.snapshot_compression);
  CHECK(c.shard_count == 128);
  CHECK(c.replication_factor == 5);
  CHECK(c.log_level == LogLevel::kDebug);
  CHECK(c.max_value_bytes == 4u << 20);
  CHECK(c.max_connections == 64);
  CHECK(c.request_timeout_ms == 500);
  CHECK(c.http_idle_timeout_ms == 90'000);
}

std::string flag_of(const std::string& name) {
  std::string flag = "--";
  for (const char ch : name) flag += ch == '_' ? '-' : static_cast<char>(std::tolower(ch));
  return flag;
}

TEST_CASE("defaults: a bare start is a private one-node cluster", "[server][config]") {
  const NodeConfig c = load_ok({});
  CHECK(c.node_id == NodeId("node-1"));
  CHECK(c.node_port == 3000);
  CHECK(c.bind_host == "127.0.0.1");
  REQUIRE(c.cluster_nodes.size() == 1);
  CHECK(c.cluster_nodes[0] == ClusterMember{NodeId("node-1"), "127.0.0.1", 3000});
  CHECK(c.self() == &c.cluster_nodes[0]);
  CHECK(c.cluster_id == "nodenomad");
  CHECK_FALSE(c.join.has_value());
  CHECK(c.data_dir == "data/node-1");
  CHECK(c.wal_dir == "data/node-1/wal");
  CHECK(c.max_wal_bytes == 1ull << 30);
  CHECK(c.max_concurrent_migrations == 3);
  CHECK(c.migration_chunk_bytes == 1u << 20);
  CHECK(c.migration_timeout_ms == 30'000);
  CHECK(c.maintenance_interval_ms == 10'000);
  CHECK(c.shard_count == 64);
  CHECK(c.replication_factor == 3);
  CHECK(c.log_level == LogLevel::kInfo);
  CHECK(c.max_value_bytes == 1u << 20);
}

TEST_CASE("every setting through the environment", "[server][config]") {
  check_custom(load_ok({}, kCustom));
}

TEST_CASE("every setting through flags, both spellings", "[server][config]") {
  std::vector<std::string> separate;
  std::vector<std::string> joined;
  for (const auto& [name, value] : kCustom) {
    separate.push_back(flag_of(name));
    separate.push_back(value);
    joined.push_back(flag_of(name) + "=" + value);
  }
  check_custom(load_ok(separate));
  check_custom(load_ok(joined));
}

TEST_CASE("every setting through a config file, by --config or CONFIG_FILE", "[server][config]") {
  std::string text = "# NodeNomad node settings\n\n";
  for (const auto& [name, value] : kCustom) text += name + "=" + value + "\n";
  const TempConfigFile file(text);
  check_custom(load_ok({"--config", file.path}));
  check_custom(load_ok({"--config=" + file.path}));
  check_custom(load_ok({}, {{"CONFIG_FILE", file.path}}));
}

TEST_CASE("config file: comments, blanks, export, quotes, CRLF, spaces", "[server][config]") {
  const TempConfigFile file(
      "  # comment\r\n"
      "\r\n"
      "export NODE_ID = node-7\r\n"
      "DATA_DIR=\"/data/with space\"\r\n"
      "CLUSTER_ID='quoted'\r\n"
      "NODE_PORT=3007");
  const NodeConfig c = load_ok({"--config", file.path});
  CHECK(c.node_id == NodeId("node-7"));
  CHECK(c.data_dir == "/data/with space");
  CHECK(c.wal_dir == "/data/with space/wal");
  CHECK(c.cluster_id == "quoted");
  CHECK(c.node_port == 3007);
}

TEST_CASE("precedence: flag over environment over file over default", "[server][config]") {
  const TempConfigFile file("MAX_WAL_SIZE=1MB\nSHARD_COUNT=8\nLOG_LEVEL=warn\n");
  const Env env = {{"MAX_WAL_SIZE", "2MB"}, {"SHARD_COUNT", "16"}};
  const NodeConfig c = load_ok({"--config", file.path, "--max-wal-size", "3MB"}, env);
  CHECK(c.max_wal_bytes == 3u << 20);     // flag
  CHECK(c.shard_count == 16);             // env over file
  CHECK(c.log_level == LogLevel::kWarn);  // file
  CHECK(c.replication_factor == 3);       // default
  // A flag wins even over a bad environment value, which is then not read.
  CHECK(load_ok({"--shard-count", "4"}, {{"SHARD_COUNT", "lots"}}).shard_count == 4);
  // --config wins over CONFIG_FILE.
  CHECK(load_ok({"--config", file.path}, {{"CONFIG_FILE", "/nonexistent"}}).shard_count == 8);
}

TEST_CASE("an empty environment variable is unset; an empty flag or file value is an error",
          "[server][config]") {
  CHECK(load_ok({}, {{"MAX_WAL_SIZE", ""}, {"CONFIG_FILE", ""}}).max_wal_bytes == 1ull << 30);
  CHECK(load_error({"--max-wal-size="}) ==
        "--max-wal-size=\"\" (variable MAX_WAL_SIZE): not a size (empty); expected a whole "
        "number with an optional unit B, KB, MB, GB or TB (1KB = 1024 bytes; e.g. 1GB)");
  const TempConfigFile file("DATA_DIR=\n");
  CHECK(load_error({"--config", file.path}) ==
        "DATA_DIR=\"\" (" + file.path +
            " line 1; flag --data-dir): not a path; expected a directory path "
            "(e.g. /var/lib/nodenomad)");
  CHECK(load_error({"--config="}) == "--config=\"\" (variable CONFIG_FILE): expected a file path");
}

TEST_CASE("a bad value names the variable, the flag, the source and the form", "[server][config]") {
  const std::string why =
      ": not a size (unknown unit \"XB\"); expected a whole number with an optional unit B, "
      "KB, MB, GB or TB (1KB = 1024 bytes; e.g. 1GB)";
  CHECK(load_error({}, {{"MAX_WAL_SIZE", "12XB"}}) ==
        "MAX_WAL_SIZE=\"12XB\" (environment; flag --max-wal-size)" + why);
  CHECK(load_error({"--max-wal-size", "12XB"}) ==
        "--max-wal-size=\"12XB\" (variable MAX_WAL_SIZE)" + why);
  const TempConfigFile file("\nMAX_WAL_SIZE=12XB\n");
  CHECK(load_error({"--config", file.path}) ==
        "MAX_WAL_SIZE=\"12XB\" (" + file.path + " line 2; flag --max-wal-size)" + why);
}

TEST_CASE("every setting refuses a bad value with its own message", "[server][config]") {
  const std::map<std::string, std::string> expected_reason = {
      {"NODE_ID", "not a node id; expected 1 to 64 letters, digits, '.', '_' or '-' (e.g. node-1)"},
      {"NODE_PORT", "not a whole number; expected a whole number from 1 to 65535"},
      {"BIND_HOST",
       "not a host; expected a host name or an IP address (e.g. 0.0.0.0, "
       "127.0.0.1, node-1 or ::1)"},
      {"CLUSTER_NODES",
       "not a member list (entry 1 \"bad value\": no port); expected "
       "comma-separated id@host:port or name:port entries (e.g. "
       "node-1@127.0.0.1:3000,node-2@127.0.0.1:3001)"},
      {"CLUSTER_ID",
       "not a cluster id; expected 1 to 64 letters, digits, '.', '_' or '-' "
       "(e.g. nodenomad)"},
      {"JOIN",
       "not an address (no port); expected host:port (e.g. 127.0.0.1:3000, "
       "node-1:3000 or [::1]:3000)"},
      {"LOG_LEVEL", "not a log level; expected debug, info, warn or error"},
      {"SNAPSHOT_COMPRESSION", "not on or off; expected on or off"},
  };
  const std::vector<std::string> sizes = {"MAX_WAL_SIZE", "MIGRATION_CHUNK_SIZE", "MAX_VALUE_SIZE"};
  const std::vector<std::string> durations = {"MIGRATION_TIMEOUT", "REQUEST_TIMEOUT",
                                              "HTTP_IDLE_TIMEOUT", "MAINTENANCE_INTERVAL"};
  const std::vector<std::string> counts = {"MAX_CONCURRENT_MIGRATIONS", "SHARD_COUNT",
                                           "REPLICATION_FACTOR", "MAX_CONNECTIONS"};
  for (const auto& [name, unused] : kCustom) {
    if (name == "DATA_DIR" || name == "WAL_DIR") continue;  // any non-empty path is one
    INFO(name);
    const std::string message = load_error({}, {{name, "bad value"}});
    const std::string prefix = name + "=\"bad value\" (environment; flag " + flag_of(name) + "): ";
    REQUIRE(message.substr(0, prefix.size()) == prefix);
    const std::string reason = message.substr(prefix.size());
    if (expected_reason.count(name) != 0) {
      CHECK(reason == expected_reason.at(name));
    } else if (std::find(sizes.begin(), sizes.end(), name) != sizes.end()) {
      CHECK(reason.substr(0, 11) == "not a size ");
    } else if (std::find(durations.begin(), durations.end(), name) != durations.end()) {
      CHECK(reason.substr(0, 15) == "not a duration ");
    } else {
      REQUIRE(std::find(counts.begin(), counts.end(), name) != counts.end());
      CHECK(reason.substr(0, 18) == "not a whole number");
    }
  }
}

TEST_CASE("SNAPSHOT_COMPRESSION: on by default, on or off in any case, nothing else",
          "[server][config]") {
  CHECK(load_ok({}).snapshot_compression);
  CHECK_FALSE(load_ok({}, {{"SNAPSHOT_COMPRESSION", "off"}}).snapshot_compression);
  CHECK_FALSE(load_ok({"--snapshot-compression", "OFF"}).snapshot_compression);
  CHECK(load_ok({"--snapshot-compression=On"}, {{"SNAPSHOT_COMPRESSION", "off"}})
            .snapshot_compression);
  CHECK(load_error({}, {{"SNAPSHOT_COMPRESSION", "false"}}) ==
        "SNAPSHOT_COMPRESSION=\"false\" (environment; flag --snapshot-compression): not on or "
        "off; expected on or off");
  CHECK(load_error({"--snapshot-compression", "0"}) ==
        "--snapshot-compression=\"0\" (variable SNAPSHOT_COMPRESSION): not on or off; "
        "expected on or off");
  std::string text;
  for (const std::string& line : describe_node_config(load_ok({}))) text += line + "\n";
  CHECK(text.find("SNAPSHOT_COMPRESSION=on\n") != std::string::npos);
}

TEST_CASE("ranges are checked with the accepted range in the message", "[server][config]") {
  CHECK(load_error({"--node-port", "0"}) ==
        "--node-port=\"0\" (variable NODE_PORT): out of range; expected a whole number from 1 "
        "to 65535");
  CHECK(load_error({"--max-concurrent-migrations", "0"}).find("from 1 to 64") != std::string::npos);
  CHECK(load_error({"--replication-factor", "8"}).find("from 1 to 7") != std::string::npos);
  CHECK(load_error({"--shard-count", "4097"}).find("from 1 to 4096") != std::string::npos);
  CHECK(load_error({"--max-wal-size", "1KB"}) ==
        "--max-wal-size=\"1KB\" (variable MAX_WAL_SIZE): out of range; expected a size from "
        "1MB to 1024TB (1KB = 1024 bytes)");
  CHECK(load_error({"--migration-chunk-size", "128MB"}).find("from 4KB to 32MB") !=
        std::string::npos);
  CHECK(load_error({"--migration-timeout", "500ms"}) ==
        "--migration-timeout=\"500ms\" (variable MIGRATION_TIMEOUT): out of range; expected a "
        "duration from 1s to 24h");
  CHECK(load_ok({"--log-level", "WARN"}).log_level == LogLevel::kWarn);
}

TEST_CASE("command line mistakes are named", "[server][config]") {
  CHECK(load_error({"--nodeid", "x"}) == "unknown flag --nodeid; see --help for the settings");
  CHECK(load_error({"--node_id", "x"}) == "unknown flag --node_id; did you mean --node-id?");
  CHECK(load_error({"--NODE-ID=x"}) == "unknown flag --NODE-ID; did you mean --node-id?");
  CHECK(load_error({"--node-id"}) == "--node-id needs a value; see --help");
  CHECK(load_error({"--node-id", "--node-port", "1"}) == "--node-id needs a value; see --help");
  CHECK(load_error({"--node-id", "a", "--node-id=b"}) == "--node-id given twice");
  CHECK(load_error({"--config", "a", "--config", "b"}) == "--config given twice");
  CHECK(load_error({"node-1"}) ==
        "unexpected argument \"node-1\"; settings are given as --name VALUE (see --help)");
  CHECK(load_error({"-x"}) ==
        "unexpected argument \"-x\"; settings are given as --name VALUE (see --help)");
  CHECK(load_error({"--"}) ==
        "unexpected argument \"--\"; settings are given as --name VALUE (see --help)");
  // A value that starts with '-' reaches its parser, for a precise message.
  CHECK(load_error({"--shard-count", "-1"}) ==
        "--shard-count=\"-1\" (variable SHARD_COUNT): not a whole number; expected a whole "
        "number from 1 to 4096");
}

TEST_CASE("config file mistakes are named with the line", "[server][config]") {
  const TempConfigFile unknown("NODE_ID=a\nMAX_WAL=1GB\n");
  CHECK(load_error({"--config", unknown.path}) ==
        unknown.path + " line 2: unknown setting \"MAX_WAL\"; see --help for the settings");
  const TempConfigFile syntax("NODE_ID node-1\n");
  CHECK(load_error({"--config", syntax.path}) ==
        syntax.path + " line 1: expected KEY=value, a # comment or a blank line");
  const TempConfigFile no_key("=value\n");
  CHECK(load_error({"--config", no_key.path}) ==
        no_key.path + " line 1: expected KEY=value, a # comment or a blank line");
  const TempConfigFile twice("NODE_ID=a\n# x\nNODE_ID=b\n");
  CHECK(load_error({"--config", twice.path}) ==
        twice.path + " line 3: NODE_ID set twice (first at " + twice.path + " line 1)");
  const TempConfigFile nested("CONFIG_FILE=/etc/other.conf\n");
  CHECK(load_error({"--config", nested.path}) ==
        nested.path + " line 1: CONFIG_FILE cannot be set inside a config file");
  const std::string missing = load_error({"--config", "/nonexistent/node.conf"});
  CHECK(missing.substr(0, 47) == "cannot read config file /nonexistent/node.conf:");
  const TempConfigFile huge(std::string((1u << 20) + 1, '#'));
  CHECK(load_error({"--config", huge.path}) ==
        "config file " + huge.path + " is larger than 1MB; is it the right file?");
}

TEST_CASE("CLUSTER_NODES: this node's entry gives its port and bind host", "[server][config]") {
  const Env env = {{"NODE_ID", "node-2"},
                   {"CLUSTER_NODES", "node-1@10.0.0.1:3000,node-2@10.0.0.2:3001"}};
  const NodeConfig c = load_ok({}, env);
  CHECK(c.node_port == 3001);
  CHECK(c.bind_host == "10.0.0.2");
  REQUIRE(c.self() != nullptr);
  CHECK(c.self()->address() == "10.0.0.2:3001");
  CHECK(c.data_dir == "data/node-2");

  CHECK(load_ok({"--node-port", "3001", "--bind-host", "0.0.0.0"}, env).bind_host == "0.0.0.0");
  CHECK(load_error({"--node-port", "3000"}, env) ==
        "NODE_PORT=3000 (--node-port) disagrees with this node's CLUSTER_NODES entry "
        "node-2@10.0.0.2:3001; give the same port in both, or leave NODE_PORT unset");
}

TEST_CASE("CLUSTER_NODES: the seed's short form, one per process", "[server][config]") {
  const Env env = {{"NODE_ID", "node-3"}, {"CLUSTER_NODES", "node-1:3000,node-2:3000,node-3:3000"}};
  const NodeConfig c = load_ok({}, env);
  CHECK(c.node_port == 3000);
  CHECK(c.bind_host == "node-3");
  CHECK(c.cluster_nodes.size() == 3);
}

TEST_CASE("CLUSTER_NODES without this node needs JOIN", "[server][config]") {
  const Env env = {{"NODE_ID", "node-4"}, {"CLUSTER_NODES", "node-1:3000,node-2:3000"}};
  CHECK(load_error({}, env) ==
        "NODE_ID=node-4 (--node-id) is not in CLUSTER_NODES (node-1, node-2); add it as "
        "node-4@host:port, or set JOIN (--join) to join a running cluster");
  const NodeConfig joining = load_ok({"--join", "node-1:3000", "--node-port", "3003"}, env);
  CHECK(joining.join->to_string() == "node-1:3000");
  CHECK(joining.bind_host == "0.0.0.0");
  CHECK(joining.node_port == 3003);
  CHECK(joining.self() == nullptr);
}

TEST_CASE("JOIN without CLUSTER_NODES", "[server][config]") {
  const NodeConfig c = load_ok({"--node-id", "node-4", "--join", "127.0.0.1:3000"});
  CHECK(c.cluster_nodes.empty());
  CHECK(c.bind_host == "0.0.0.0");
  CHECK(c.node_port == 3000);
  CHECK(load_ok({"--join", "127.0.0.1:3000", "--bind-host", "127.0.0.1"}).bind_host == "127.0.0.1");
  CHECK(load_error({"--join", "127.0.0.1:3000", "--cluster-nodes", "node-1@127.0.0.1:3000"}) ==
        "JOIN=127.0.0.1:3000 (--join) is this node's own address; give the address of a "
        "running member");
}

TEST_CASE("a lone node listens where its one entry says", "[server][config]") {
  const NodeConfig c = load_ok({"--node-port", "4000", "--bind-host", "0.0.0.0"});
  REQUIRE(c.cluster_nodes.size() == 1);
  CHECK(c.cluster_nodes[0].address() == "127.0.0.1:4000");
  CHECK(load_ok({"--bind-host", "10.1.2.3"}).cluster_nodes[0].address() == "10.1.2.3:3000");
}

TEST_CASE("describe_node_config lines load back to the same configuration", "[server][config]") {
  const NodeConfig original = load_ok({}, kCustom);
  std::string text;
  for (const std::string& line : describe_node_config(original)) text += line + "\n";
  CHECK(text.find("MAX_WAL_SIZE=512MB\n") != std::string::npos);
  CHECK(text.find("HTTP_IDLE_TIMEOUT=1m30s\n") != std::string::npos);
  const TempConfigFile file(text);
  check_custom(load_ok({"--config", file.path}));
}

TEST_CASE("--help lists every setting with its variable and default", "[server][config]") {
  const char* argv[] = {"nodenomad-node", "--node-id", "x", "-h"};
  CHECK(node_config_help_requested(4, argv));
  const char* plain[] = {"nodenomad-node", "--node-id", "x"};
  CHECK_FALSE(node_config_help_requested(3, plain));
  const std::string help = node_config_help("nodenomad-node");
  CHECK(help.find("Usage: nodenomad-node [--config FILE]") != std::string::npos);
  for (const auto& [name, unused] : kCustom) {
    CHECK(help.find(flag_of(name) + " ") != std::string::npos);
    CHECK(help.find("(" + name + ", default: ") != std::string::npos);
  }
  CHECK(help.find("1KB = 1024 bytes") != std::string::npos);
}

}  // namespace
}  // namespace nodenomad
