#include "server/node_config_settings.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "server/config_values.hpp"

namespace nodenomad::server {
namespace {

constexpr std::size_t kMaxPathBytes = 4096;  // PATH_MAX on Linux

// Bounds with a reason each: the chunk and the value must fit one transport
// frame (64MB at most), the WAL must hold more than one chunk of writes.
constexpr std::uint64_t kMinWalBytes = 1ull << 20;
constexpr std::uint64_t kMaxWalBytes = 1ull << 50;
constexpr std::uint64_t kMinChunkBytes = 4ull << 10;
// A chunk and its envelope must fit one peer frame with room to spare.
constexpr std::uint64_t kMaxChunkBytes = 32ull << 20;
constexpr std::uint64_t kMaxFrameBytes = 64ull << 20;

template <typename T>
Status assign_uint(std::string_view text, std::uint64_t min, std::uint64_t max, T& out) {
  NN_ASSIGN_OR_RETURN(const std::uint64_t value, parse_bounded_uint(text, min, max));
  out = static_cast<T>(value);
  return Status::ok();
}

Status assign_size(std::string_view text, std::uint64_t min, std::uint64_t max,
                   std::uint64_t& out) {
  NN_ASSIGN_OR_RETURN(const std::uint64_t bytes, parse_size_bytes(text));
  if (bytes < min || bytes > max) {
    return Status::invalid_argument(
        fmt::format("out of range; expected a size from {} to {} (1KB = 1024 bytes)",
                    format_size_bytes(min), format_size_bytes(max)));
  }
  out = bytes;
  return Status::ok();
}

Status assign_duration(std::string_view text, std::uint64_t min_ms, std::uint64_t max_ms,
                       std::uint64_t& out) {
  NN_ASSIGN_OR_RETURN(const std::uint64_t ms, parse_duration_ms(text));
  if (ms < min_ms || ms > max_ms) {
    return Status::invalid_argument(fmt::format("out of range; expected a duration from {} to {}",
                                                format_duration_ms(min_ms),
                                                format_duration_ms(max_ms)));
  }
  out = ms;
  return Status::ok();
}

Status assign_path(std::string_view text, std::string& out) {
  if (text.empty() || text.size() > kMaxPathBytes) {
    return Status::invalid_argument(
        "not a path; expected a directory path (e.g. /var/lib/nodenomad)");
  }
  out = std::string(text);
  return Status::ok();
}

Status assign_cluster_id(std::string_view text, std::string& out) {
  if (!parse_node_id(text).is_ok()) {
    return Status::invalid_argument(
        "not a cluster id; expected 1 to 64 letters, digits, '.', '_' or '-' (e.g. nodenomad)");
  }
  out = std::string(text);
  return Status::ok();
}

Status assign_log_level(std::string_view text, LogLevel& out) {
  std::string lowered(text);
  for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const LogLevel level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (log_level_name(level) == lowered) {
      out = level;
      return Status::ok();
    }
  }
  return Status::invalid_argument("not a log level; expected debug, info, warn or error");
}

std::string show_members(const std::vector<ClusterMember>& members) {
  std::string out;
  for (const auto& m : members) {
    if (!out.empty()) out += ',';
    out += fmt::format("{}@{}", m.id.str(), m.address());
  }
  return out;
}

const std::array<SettingSpec, 23> kSettings = {{
    {"NODE_ID", "ID", "node-1", "this node's id, unique in the cluster",
     [](std::string_view t, NodeConfig& c) {
       NN_ASSIGN_OR_RETURN(c.node_id, parse_node_id(t));
       return Status::ok();
     },
     [](const NodeConfig& c) { return c.node_id.str(); }},
    {"NODE_PORT", "PORT", "this node's CLUSTER_NODES port, else 3000",
     "the one port for HTTP clients and peers",
     [](std::string_view t, NodeConfig& c) { return assign_uint(t, 1, 65535, c.node_port); },
     [](const NodeConfig& c) { return std::to_string(c.node_port); }},
    {"BIND_HOST", "HOST",
     "this node's CLUSTER_NODES host; without one 0.0.0.0 when joining, else 127.0.0.1",
     "the interface to listen on (0.0.0.0: all)",
     [](std::string_view t, NodeConfig& c) {
       NN_ASSIGN_OR_RETURN(c.bind_host, parse_host(t));
       return Status::ok();
     },
     [](const NodeConfig& c) { return c.bind_host; }},
    {"CLUSTER_NODES", "LIST", "this node alone",
     "the initial members: id@host:port,... or the short form name:port,...",
     [](std::string_view t, NodeConfig& c) {
       NN_ASSIGN_OR_RETURN(c.cluster_nodes, parse_cluster_nodes(t));
       return Status::ok();
     },
     [](const NodeConfig& c) { return show_members(c.cluster_nodes); }},
    {"CLUSTER_ID", "NAME", "nodenomad", "peers with another cluster id are refused",
     [](std::string_view t, NodeConfig& c) { return assign_cluster_id(t, c.cluster_id); },
     [](const NodeConfig& c) { return c.cluster_id; }},
    {"JOIN", "HOST:PORT", "none", "a node of a running cluster to join",
     [](std::string_view t, NodeConfig& c) {
       NN_ASSIGN_OR_RETURN(c.join, parse_host_port(t));
       return Status::ok();
     },
     [](const NodeConfig& c) { return c.join ? c.join->to_string() : std::string(); }},
    {"DATA_DIR", "DIR", "data/<NODE_ID>", "where snapshots and metadata live",
     [](std::string_view t, NodeConfig& c) { return assign_path(t, c.data_dir); },
     [](const NodeConfig& c) { return c.data_dir; }},
    {"WAL_DIR", "DIR", "<DATA_DIR>/wal", "where the Raft logs live (a faster disk helps)",
     [](std::string_view t, NodeConfig& c) { return assign_path(t, c.wal_dir); },
     [](const NodeConfig& c) { return c.wal_dir; }},
    {"MAX_WAL_SIZE", "SIZE", "1GB", "log bytes kept before a snapshot lets them go",
     [](std::string_view t, NodeConfig& c) {
       return assign_size(t, kMinWalBytes, kMaxWalBytes, c.max_wal_bytes);
     },
     [](const NodeConfig& c) { return format_size_bytes(c.max_wal_bytes); }},
    {"MAX_CONCURRENT_MIGRATIONS", "N", "3", "shard moves running at once in the cluster",
     [](std::string_view t, NodeConfig& c) {
       return assign_uint(t, 1, 64, c.max_concurrent_migrations);
     },
     [](const NodeConfig& c) { return std::to_string(c.max_concurrent_migrations); }},
    {"MAX_NODE_MIGRATIONS", "N", "3", "shard moves one node takes part in at once",
     [](std::string_view t, NodeConfig& c) {
       return assign_uint(t, 1, 64, c.max_node_migrations);
     },
     [](const NodeConfig& c) { return std::to_string(c.max_node_migrations); }},
    {"MIGRATION_BANDWIDTH", "SIZE", "0", "migration bytes/s this node sends in all (0: no limit)",
     [](std::string_view t, NodeConfig& c) {
       return assign_size(t, 0, 1ull << 40, c.migration_bandwidth_bytes_per_s);
     },
     [](const NodeConfig& c) { return format_size_bytes(c.migration_bandwidth_bytes_per_s); }},
    {"MIGRATION_CHUNK_SIZE", "SIZE", "1MB", "bytes per migration transfer message",
     [](std::string_view t, NodeConfig& c) {
       return assign_size(t, kMinChunkBytes, kMaxChunkBytes, c.migration_chunk_bytes);
     },
     [](const NodeConfig& c) { return format_size_bytes(c.migration_chunk_bytes); }},
    {"MIGRATION_TIMEOUT", "DURATION", "30s", "a migration stage without progress this long fails",
     [](std::string_view t, NodeConfig& c) {
       return assign_duration(t, 1'000, 86'400'000, c.migration_timeout_ms);
     },
     [](const NodeConfig& c) { return format_duration_ms(c.migration_timeout_ms); }},
    {"MAINTENANCE_INTERVAL", "DURATION", "10s",
     "how often the metadata leader sweeps for orphan shard copies",
     [](std::string_view t, NodeConfig& c) {
       return assign_duration(t, 100, 86'400'000, c.maintenance_interval_ms);
     },
     [](const NodeConfig& c) { return format_duration_ms(c.maintenance_interval_ms); }},
    {"SNAPSHOT_COMPRESSION", "on|off", "on",
     "zstd on the snapshot chunks this node sends (off while older nodes remain)",
     [](std::string_view t, NodeConfig& c) {
       NN_ASSIGN_OR_RETURN(c.snapshot_compression, parse_on_off(t));
       return Status::ok();
     },
     [](const NodeConfig& c) { return std::string(format_on_off(c.snapshot_compression)); }},
    {"SHARD_COUNT", "N", "64", "shards of a new cluster (fixed once it is created)",
     [](std::string_view t, NodeConfig& c) { return assign_uint(t, 1, 4096, c.shard_count); },
     [](const NodeConfig& c) { return std::to_string(c.shard_count); }},
    {"REPLICATION_FACTOR", "N", "3", "replicas per shard (fewer if the cluster is smaller)",
     [](std::string_view t, NodeConfig& c) { return assign_uint(t, 1, 7, c.replication_factor); },
     [](const NodeConfig& c) { return std::to_string(c.replication_factor); }},
    {"LOG_LEVEL", "LEVEL", "info", "debug, info, warn or error",
     [](std::string_view t, NodeConfig& c) { return assign_log_level(t, c.log_level); },
     [](const NodeConfig& c) { return std::string(log_level_name(c.log_level)); }},
    {"MAX_VALUE_SIZE", "SIZE", "1MB", "the largest value a PUT may carry (else 413)",
     [](std::string_view t, NodeConfig& c) {
       return assign_size(t, 1, kMaxFrameBytes, c.max_value_bytes);
     },
     [](const NodeConfig& c) { return format_size_bytes(c.max_value_bytes); }},
    {"MAX_CONNECTIONS", "N", "1024", "HTTP connections served at once",
     [](std::string_view t, NodeConfig& c) {
       return assign_uint(t, 1, 100'000, c.max_connections);
     },
     [](const NodeConfig& c) { return std::to_string(c.max_connections); }},
    {"REQUEST_TIMEOUT", "DURATION", "5s", "a request not answered by then gets 504",
     [](std::string_view t, NodeConfig& c) {
       return assign_duration(t, 10, 600'000, c.request_timeout_ms);
     },
     [](const NodeConfig& c) { return format_duration_ms(c.request_timeout_ms); }},
    {"HTTP_IDLE_TIMEOUT", "DURATION", "60s", "an idle keep-alive connection is closed after",
     [](std::string_view t, NodeConfig& c) {
       return assign_duration(t, 1'000, 3'600'000, c.http_idle_timeout_ms);
     },
     [](const NodeConfig& c) { return format_duration_ms(c.http_idle_timeout_ms); }},
}};

}  // namespace

std::span<const SettingSpec> node_settings() { return kSettings; }

std::vector<std::string_view> node_setting_names() {
  std::vector<std::string_view> names;
  for (const auto& spec : kSettings) names.push_back(spec.name);
  return names;
}

}  // namespace nodenomad::server
