// NodeConfig: everything one nodenomad-node process needs to start, and
// load_node_config(), which reads it from the command line, the environment
// and an optional config file (docs/configuration.md is the user's guide).
//
// Each setting has one name in three spellings: an environment variable
// (MAX_WAL_SIZE), a flag made of its kebab-case (--max-wal-size VALUE or
// --max-wal-size=VALUE), and a key of the config file named by --config or
// CONFIG_FILE (the same KEY=value lines as an env file). When a setting comes
// from more than one source, the flag wins over the environment, which wins
// over the file, which wins over the default: the more specific to this one
// start, the stronger.
//
// Thread safety: plain values and functions; load_node_config reads the
// config file and calls the environment lookup, nothing else.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/logging.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

struct HostPort {
  std::string host;  // DNS name or IP literal; IPv6 without brackets
  std::uint16_t port = 0;

  // "host:port", with an IPv6 host in brackets.
  std::string to_string() const;
  bool operator==(const HostPort&) const = default;
};

// One entry of CLUSTER_NODES: where peers and clients reach member `id`.
struct ClusterMember {
  NodeId id;
  std::string host;  // DNS name or IP literal; IPv6 without brackets
  std::uint16_t port = 0;

  // "host:port", with an IPv6 host in brackets (the API's "address").
  std::string address() const;
  bool operator==(const ClusterMember&) const = default;
};

struct NodeConfig {
  // NODE_ID. Default "node-1", so that a bare start is a one-node cluster.
  NodeId node_id{"node-1"};
  // NODE_PORT: the one port for HTTP clients and peers. Default: the port of
  // this node's CLUSTER_NODES entry, else 3000. Must agree with the entry.
  std::uint16_t node_port = 3000;
  // BIND_HOST: the interface the port listens on. Default: the host of this
  // node's CLUSTER_NODES entry (the address peers were told); with no entry,
  // 0.0.0.0 when joining (the cluster must reach us at an address we are not
  // told) and 127.0.0.1 otherwise (a lone node stays private).
  std::string bind_host = "127.0.0.1";
  // CLUSTER_NODES: the initial members, in the order given. Default: this
  // node alone (at bind_host, or 127.0.0.1 when binding every interface),
  // unless JOIN is set, in which case it may be empty.
  std::vector<ClusterMember> cluster_nodes;
  // CLUSTER_ID: checked in every peer handshake so that two clusters on one
  // network never exchange messages. Default "nodenomad".
  std::string cluster_id = "nodenomad";
  // JOIN: an endpoint of a running cluster to join (after
  // `nodenomadctl cluster join` added this node there). Empty: bootstrap
  // from CLUSTER_NODES, or restart from DATA_DIR.
  std::optional<HostPort> join;

  // DATA_DIR. Default "data/<NODE_ID>" under the working directory.
  std::string data_dir;
  // WAL_DIR. Default "<DATA_DIR>/wal".
  std::string wal_dir;
  // MAX_WAL_SIZE: log bytes kept before a snapshot lets them go. 1GB.
  std::uint64_t max_wal_bytes = 1ull << 30;

  // MAX_CONCURRENT_MIGRATIONS: moves running at once in the cluster. 3.
  std::uint32_t max_concurrent_migrations = 3;
  // MAX_NODE_MIGRATIONS: moves one node takes part in at once. 3.
  std::uint32_t max_node_migrations = 3;
  // MIGRATION_BANDWIDTH: snapshot bytes/s this node sends in all; 0 = no limit.
  std::uint64_t migration_bandwidth_bytes_per_s = 0;
  // MIGRATION_CHUNK_SIZE: bytes per transfer message. 1MB.
  std::uint64_t migration_chunk_bytes = 1ull << 20;
  // MIGRATION_TIMEOUT: a stage making no progress for this long fails. 30s.
  std::uint64_t migration_timeout_ms = 30'000;
  // MAINTENANCE_INTERVAL: how often the metadata leader drops shard copies
  // no placement names (a source or target that was down when its move
  // ended). 10s.
  std::uint64_t maintenance_interval_ms = 10'000;
  // SNAPSHOT_COMPRESSION: zstd on the snapshot chunks this node sends
  // (AsioTransportOptions::compress_snapshot_chunks). Off while the cluster
  // still has nodes built before envelope format 2, which refuse compressed
  // chunks. on.
  bool snapshot_compression = true;

  // SHARD_COUNT: fixed when the cluster is created; ignored on restart and
  // join (the cluster's own value wins). 64.
  std::uint32_t shard_count = 64;
  // REPLICATION_FACTOR: replicas per shard, or fewer when the cluster has
  // fewer nodes. 3.
  std::uint32_t replication_factor = 3;

  // LOG_LEVEL: debug, info, warn or error. info.
  LogLevel log_level = LogLevel::kInfo;

  // HTTP front door.
  std::uint64_t max_value_bytes = 1ull << 20;   // MAX_VALUE_SIZE, 1MB (413 above)
  std::uint32_t max_connections = 1024;         // MAX_CONNECTIONS, open at once
  std::uint64_t request_timeout_ms = 5'000;     // REQUEST_TIMEOUT, 5s (then 504)
  std::uint64_t http_idle_timeout_ms = 60'000;  // HTTP_IDLE_TIMEOUT, 60s keep-alive

  // This node's own CLUSTER_NODES entry, if it has one.
  const ClusterMember* self() const;
};

// Answers the value of an environment variable, or nothing when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
EnvLookup process_env();
// A fixed environment, for tests and for hosts that configure from elsewhere.
EnvLookup env_from_map(std::map<std::string, std::string> vars);

// True when argv asks for --help (or -h); check it before load_node_config
// and print node_config_help() instead of starting.
bool node_config_help_requested(int argc, const char* const* argv);
std::string node_config_help(std::string_view program_name);

// Reads, checks and completes the configuration (argv[0] is the program).
// An empty environment variable counts as unset (launchers and compose files
// leave blanks); an empty flag or file value is an error.
// Errors (kInvalidArgument), each one line naming the setting as variable and
// flag, where the value came from, and the accepted form:
//   a bad value, an unknown flag or config-file key, a flag without its
//   value, a setting given twice in one source, an unreadable config file,
//   duplicate ids or addresses in CLUSTER_NODES, NODE_ID missing from
//   CLUSTER_NODES (unless JOIN is set), NODE_PORT disagreeing with this
//   node's entry.
Result<NodeConfig> load_node_config(int argc, const char* const* argv, const EnvLookup& env);

// The effective settings as "KEY=value" lines in the accepted forms, for the
// server to log at start-up. Each line parses back to the same value; a
// setting with no value (JOIN unset) is left out.
std::vector<std::string> describe_node_config(const NodeConfig& config);

}  // namespace nodenomad
