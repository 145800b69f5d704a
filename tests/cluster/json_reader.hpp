// The few JSON answers of API.md the real-process tests read back. Boost.JSON
// is compiled in json_reader.cpp only, because it dominates compile time.
//
// Every function is pure and thread-safe; a body that is not the expected
// JSON answers nullopt rather than throwing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nodenomad::process_testing {

// A top-level member of a JSON object: {"version": 3} -> 3.
std::optional<std::uint64_t> json_uint_member(std::string_view json, std::string_view name);
std::optional<bool> json_bool_member(std::string_view json, std::string_view name);
// {"error": {"code": "invalid_key", ...}} -> "invalid_key".
std::optional<std::string> json_error_code(std::string_view json);

struct ShardView {
  std::uint64_t id = 0;
  std::string leader;  // empty while the shard has none
  std::vector<std::string> replicas;
  std::vector<std::string> learners;
};

// GET /v1/cluster, the parts the tests use.
struct ClusterView {
  std::string cluster_id;
  std::string metadata_leader;
  std::vector<ShardView> shards;

  // How many shards each node leads (nodes leading none are absent).
  std::map<std::string, std::size_t> shards_led() const;
  bool every_shard_has_leader() const;
};

std::optional<ClusterView> parse_cluster_view(std::string_view json);

// One operation of GET /v1/migrations (docs/http_api.md, "An operation"),
// the parts the tests use.
struct MigrationView {
  std::string id;
  std::uint64_t shard = 0;
  std::string source;
  std::string target;
  std::string stage;  // "prepare" ... "done", "failed", "cancelled"
  std::string error;  // empty: null
  std::uint64_t bytes_total = 0;
  std::uint64_t bytes_done = 0;
  bool queued = false;
  bool paused = false;
  // Milliseconds spent in each stage ("prepare" ... "cleanup"); a stage the
  // operation never reached is 0 (an extension of API.md).
  std::map<std::string, std::uint64_t> stage_ms;

  bool ended() const { return stage == "done" || stage == "failed" || stage == "cancelled"; }
};

// {"migrations": [op, ...]}; nullopt when the body is not that.
std::optional<std::vector<MigrationView>> parse_migrations(std::string_view json);
// One operation, as GET /v1/migrations/{id} answers it; nullopt when the
// body is not that.
std::optional<MigrationView> parse_migration(std::string_view json);

}  // namespace nodenomad::process_testing
