// JSON answers read back (json_reader.hpp): the only file with Boost.JSON.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/json.hpp>
#pragma GCC diagnostic pop

#include "cluster/json_reader.hpp"

namespace nodenomad::process_testing {
namespace {

namespace json = boost::json;

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

const json::value* member(const json::object& object, std::string_view name) {
  return object.if_contains(json::string_view(name.data(), name.size()));
}

std::string string_or_empty(const json::value* value) {
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

}  // namespace

std::optional<std::uint64_t> json_uint_member(std::string_view json_text, std::string_view name) {
  const std::optional<json::object> object = parse_object(json_text);
  if (!object) return std::nullopt;
  const json::value* value = member(*object, name);
  if (value == nullptr) return std::nullopt;
  if (value->is_uint64()) return value->as_uint64();
  if (value->is_int64() && value->as_int64() >= 0)
    return static_cast<std::uint64_t>(value->as_int64());
  return std::nullopt;
}

std::optional<bool> json_bool_member(std::string_view json_text, std::string_view name) {
  const std::optional<json::object> object = parse_object(json_text);
  if (!object) return std::nullopt;
  const json::value* value = member(*object, name);
  if (value == nullptr || !value->is_bool()) return std::nullopt;
  return value->as_bool();
}

std::optional<std::string> json_error_code(std::string_view json_text) {
  const std::optional<json::object> object = parse_object(json_text);
  if (!object) return std::nullopt;
  const json::value* error = member(*object, "error");
  if (error == nullptr || !error->is_object()) return std::nullopt;
  const json::value* code = member(error->as_object(), "code");
  if (code == nullptr || !code->is_string()) return std::nullopt;
  return std::string(code->as_string());
}

std::optional<ClusterView> parse_cluster_view(std::string_view json_text) {
  const std::optional<json::object> object = parse_object(json_text);
  if (!object) return std::nullopt;
  const json::value* shards = member(*object, "shards");
  if (shards == nullptr || !shards->is_array()) return std::nullopt;
  ClusterView view;
  view.cluster_id = string_or_empty(member(*object, "cluster_id"));
  view.metadata_leader = string_or_empty(member(*object, "metadata_leader"));
  for (const json::value& shard : shards->as_array()) {
    if (!shard.is_object()) return std::nullopt;
    const json::object& fields = shard.as_object();
    const json::value* id = member(fields, "id");
    if (id == nullptr || !(id->is_uint64() || (id->is_int64() && id->as_int64() >= 0))) {
      return std::nullopt;
    }
    ShardView entry;
    entry.id = id->is_uint64() ? id->as_uint64() : static_cast<std::uint64_t>(id->as_int64());
    entry.leader = string_or_empty(member(fields, "leader"));
    if (const json::value* replicas = member(fields, "replicas");
        replicas && replicas->is_array()) {
      for (const json::value& replica : replicas->as_array())
        entry.replicas.push_back(string_or_empty(&replica));
    }
    if (const json::value* learners = member(fields, "learners");
        learners && learners->is_array()) {
      for (const json::value& learner : learners->as_array())
        entry.learners.push_back(string_or_empty(&learner));
    }
    view.shards.push_back(std::move(entry));
  }
  return view;
}

namespace {

std::optional<std::uint64_t> uint_of(const json::value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_uint64()) return value->as_uint64();
  if (value->is_int64() && value->as_int64() >= 0) {
    return static_cast<std::uint64_t>(value->as_int64());
  }
  return std::nullopt;
}

bool bool_or_false(const json::value* value) {
  return value != nullptr && value->is_bool() && value->as_bool();
}

std::optional<MigrationView> migration_of(const json::value& op) {
  if (!op.is_object()) return std::nullopt;
  const json::object& fields = op.as_object();
  const std::optional<std::uint64_t> shard = uint_of(member(fields, "shard"));
  MigrationView view;
  view.id = string_or_empty(member(fields, "id"));
  view.stage = string_or_empty(member(fields, "stage"));
  if (!shard || view.id.empty() || view.stage.empty()) return std::nullopt;
  view.shard = *shard;
  view.source = string_or_empty(member(fields, "source"));
  view.target = string_or_empty(member(fields, "target"));
  view.error = string_or_empty(member(fields, "error"));
  view.queued = bool_or_false(member(fields, "queued"));
  view.paused = bool_or_false(member(fields, "paused"));
  if (const json::value* progress = member(fields, "progress");
      progress != nullptr && progress->is_object()) {
    view.bytes_total = uint_of(member(progress->as_object(), "bytes_total")).value_or(0);
    view.bytes_done = uint_of(member(progress->as_object(), "bytes_done")).value_or(0);
  }
  if (const json::value* stage_ms = member(fields, "stage_ms");
      stage_ms != nullptr && stage_ms->is_object()) {
    for (const auto& [stage, ms] : stage_ms->as_object()) {
      view.stage_ms[std::string(stage)] = uint_of(&ms).value_or(0);
    }
  }
  return view;
}

}  // namespace

std::optional<std::vector<MigrationView>> parse_migrations(std::string_view json_text) {
  const std::optional<json::object> object = parse_object(json_text);
  if (!object) return std::nullopt;
  const json::value* list = member(*object, "migrations");
  if (list == nullptr || !list->is_array()) return std::nullopt;
  std::vector<MigrationView> ops;
  for (const json::value& op : list->as_array()) {
    std::optional<MigrationView> view = migration_of(op);
    if (!view) return std::nullopt;
    ops.push_back(std::move(*view));
  }
  return ops;
}

std::optional<MigrationView> parse_migration(std::string_view json_text) {
  boost::system::error_code ec;
  const json::value value = json::parse(json::string_view(json_text.data(), json_text.size()), ec);
  if (ec) return std::nullopt;
  return migration_of(value);
}

std::map<std::string, std::size_t> ClusterView::shards_led() const {
  std::map<std::string, std::size_t> led;
  for (const ShardView& shard : shards) {
    if (!shard.leader.empty()) ++led[shard.leader];
  }
  return led;
}

bool ClusterView::every_shard_has_leader() const {
  if (shards.empty()) return false;
  for (const ShardView& shard : shards) {
    if (shard.leader.empty()) return false;
  }
  return true;
}

}  // namespace nodenomad::process_testing
