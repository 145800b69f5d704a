// The migration routes of HttpRouter: create, list, show, cancel, pause,
// resume and throttle operations, rebalance, and drain a node
// (docs/http_api.md, "Migrations"). Boost.JSON reads the request bodies here
// (the second and last file with it, beside http_router.cpp); the answers are
// written by http_migration_json.cpp.
#include <limits>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "http/http_migration_json.hpp"
#include "http/http_router.hpp"
#include "http/http_text.hpp"

namespace nodenomad::net {
namespace {

namespace json = boost::json;

constexpr std::string_view kJson = "application/json";
// An operation id quoted back, or accepted at all, is at most this long; the
// Node's ids ("op-...") are far shorter.
constexpr std::size_t kOperationIdMaxBytes = 256;
// A cluster has at most 4096 shards (SHARD_COUNT), so no request moves more.
constexpr std::size_t kMaxShardsPerRequest = 4096;
// A value from the body quoted back in a message is cut to this many bytes.
constexpr std::size_t kQuotedValueMaxBytes = 40;

constexpr std::string_view kCreateForm =
    R"({"shards": [3, 7], "source": "node-1", "target": "node-4"} and optionally )"
    R"("bandwidth_bytes_per_s": N)";
constexpr std::string_view kNodeIdForm =
    "a node id: a string of 1 to 64 letters, digits, '-', '_' or '.' (e.g. \"node-1\")";

RouterResponse json_answer(unsigned status, std::string body) {
  RouterResponse response;
  response.status = status;
  response.content_type = kJson;
  response.body = std::move(body);
  return response;
}

RouterResponse bad_request(std::string_view message) {
  return error_response(400, "invalid_argument", message);
}

// A migration call's kVersionMismatch means the placement changed under the
// request (plan again), not a failed if_version: 409 Conflict, not 412,
// which answers a condition the client set.
RouterResponse migration_error(const Status& status, std::uint32_t retry_after_s) {
  if (status.is(StatusCode::kVersionMismatch)) {
    return error_response(409, "version_mismatch", status.message());
  }
  return status_response(status, retry_after_s);
}

std::string quoted_json(const json::value& value) {
  const std::string text = to_valid_utf8(json::serialize(value));
  if (text.size() <= kQuotedValueMaxBytes) return text;
  return text.substr(0, kQuotedValueMaxBytes) + "...";
}

// The body as a JSON object whose every field is one of `accepted`.
Result<json::object> parse_object_body(const std::string& body, std::string_view form,
                                       std::initializer_list<std::string_view> accepted) {
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) {
    return Status::invalid_argument("the body must be a JSON object " + std::string(form));
  }
  json::object object = std::move(parsed.as_object());
  for (const auto& field : object) {
    bool known = false;
    std::string names;
    for (const auto name : accepted) {
      known = known || field.key() == name;
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    if (!known) {
      return Status::invalid_argument(
          "unknown field \"" + to_valid_utf8(field.key().substr(0, kQuotedValueMaxBytes)) +
          "\"; accepted: " + (names.empty() ? std::string("none") : names));
    }
  }
  return object;
}

// A JSON integer in [min, max]; a fraction ("3.0") or exponent form is not one.
std::optional<std::uint64_t> whole_number(const json::value& value, std::uint64_t min,
                                          std::uint64_t max) {
  std::uint64_t n = 0;
  if (value.is_uint64()) {
    n = value.get_uint64();
  } else if (value.is_int64() && value.get_int64() >= 0) {
    n = static_cast<std::uint64_t>(value.get_int64());
  } else {
    return std::nullopt;
  }
  if (n < min || n > max) return std::nullopt;
  return n;
}

Result<std::vector<ShardId>> parse_shards(const json::object& object) {
  const std::string form = "a non-empty array of shard ids, whole numbers from 0 to " +
                           std::to_string(std::numeric_limits<std::uint32_t>::max()) +
                           " (e.g. [3, 7])";
  const json::value* value = object.if_contains("shards");
  if (value == nullptr || !value->is_array() || value->get_array().empty()) {
    return Status::invalid_argument("field \"shards\" must be " + form);
  }
  const json::array& array = value->get_array();
  if (array.size() > kMaxShardsPerRequest) {
    return Status::invalid_argument("field \"shards\" lists " + std::to_string(array.size()) +
                                    " shards; at most " + std::to_string(kMaxShardsPerRequest) +
                                    " (the most shards a cluster has)");
  }
  std::vector<ShardId> shards;
  shards.reserve(array.size());
  for (std::size_t i = 0; i < array.size(); ++i) {
    const auto id = whole_number(array[i], 0, std::numeric_limits<std::uint32_t>::max());
    if (!id) {
      return Status::invalid_argument("field \"shards\": element " + std::to_string(i) + " (" +
                                      quoted_json(array[i]) + ") is not a shard id; expected " +
                                      form);
    }
    shards.emplace_back(*id);
  }
  return shards;
}

Result<NodeId> parse_node_field(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr || !value->is_string() || !is_valid_node_id(value->get_string())) {
    return Status::invalid_argument("field \"" + std::string(name) + "\" must be " +
                                    std::string(kNodeIdForm));
  }
  return NodeId(std::string(value->get_string()));
}

// {"shards": [...], "source": "...", "target": "...", "bandwidth_bytes_per_s": N}
Result<MigrationRequest> parse_create_body(const std::string& body) {
  NN_ASSIGN_OR_RETURN(const json::object object,
                      parse_object_body(body, kCreateForm,
                                        {"shards", "source", "target", "bandwidth_bytes_per_s"}));
  MigrationRequest request;
  NN_ASSIGN_OR_RETURN(request.shards, parse_shards(object));
  NN_ASSIGN_OR_RETURN(request.source, parse_node_field(object, "source"));
  NN_ASSIGN_OR_RETURN(request.target, parse_node_field(object, "target"));
  if (const json::value* value = object.if_contains("bandwidth_bytes_per_s")) {
    const auto bandwidth = whole_number(*value, 0, std::numeric_limits<std::uint64_t>::max());
    if (!bandwidth) {
      return Status::invalid_argument(
          "field \"bandwidth_bytes_per_s\" must be a whole number of bytes per second, >= 0 "
          "(0 or absent: no limit of the operation's own), e.g. 52428800");
    }
    request.bandwidth_bytes_per_s = *bandwidth;
  }
  return request;
}

// {"bytes_per_s": N}, N > 0.
Result<std::uint64_t> parse_bandwidth_body(const std::string& body) {
  constexpr std::string_view kForm = R"({"bytes_per_s": N} with N a whole number > 0)";
  NN_ASSIGN_OR_RETURN(const json::object object, parse_object_body(body, kForm, {"bytes_per_s"}));
  const json::value* value = object.if_contains("bytes_per_s");
  const auto bandwidth =
      value ? whole_number(*value, 1, std::numeric_limits<std::uint64_t>::max()) : std::nullopt;
  if (!bandwidth) {
    return Status::invalid_argument(
        "field \"bytes_per_s\" must be a whole number of bytes per second, at least 1 "
        "(e.g. {\"bytes_per_s\": 52428800} for 50MB/s)");
  }
  return *bandwidth;
}

// The routes without parameters take no body, or an empty JSON object.
Status expect_empty_body(const std::string& body, std::string_view where) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return Status::ok();
  const std::string form = "{} (or no body at all): " + std::string(where) + " takes no field";
  return parse_object_body(body, form, {}).status();
}

Result<std::string> decode_id(std::string_view raw, std::string_view what) {
  auto id = percent_decode(raw);
  if (!id) {
    return Status::invalid_argument("the " + std::string(what) + " " +
                                    std::string(id.status().message()));
  }
  return id;
}

Result<std::string> decode_operation_id(std::string_view raw) {
  NN_ASSIGN_OR_RETURN(std::string id, decode_id(raw, "operation id"));
  if (id.size() > kOperationIdMaxBytes) {
    return Status::invalid_argument("the operation id is " + std::to_string(id.size()) +
                                    " bytes; an operation id is at most " +
                                    std::to_string(kOperationIdMaxBytes));
  }
  return id;
}

Result<NodeId> decode_node_id(std::string_view raw) {
  NN_ASSIGN_OR_RETURN(std::string id, decode_id(raw, "node id"));
  if (!is_valid_node_id(id)) {
    return Status::invalid_argument("the node id in /v1/cluster/nodes/{id} must be " +
                                    std::string(kNodeIdForm));
  }
  return NodeId(std::move(id));
}

// What create, rebalance and drain answer: 202, the operations started.
std::function<void(Result<MigrationBatch>)> batch_answer(RespondFn respond,
                                                         std::uint32_t retry_after_s) {
  return [respond = std::move(respond), retry_after_s](Result<MigrationBatch> batch) {
    if (!batch) return respond(migration_error(batch.status(), retry_after_s));
    respond(json_answer(202, migration_batch_json(*batch)));
  };
}

std::function<void(Result<MigrationStatus>)> status_answer(unsigned http_status, RespondFn respond,
                                                           std::uint32_t retry_after_s) {
  return
      [http_status, respond = std::move(respond), retry_after_s](Result<MigrationStatus> status) {
        if (!status) return respond(migration_error(status.status(), retry_after_s));
        respond(json_answer(http_status, migration_status_json(*status)));
      };
}

}  // namespace

void HttpRouter::route_migration(MigrationRoute route, std::string_view id_raw,
                                 const std::string& body, RespondFn respond) const {
  const std::uint32_t retry = limits_.retry_after_s;
  switch (route) {
    case MigrationRoute::kCreate:
      return migration_create(body, std::move(respond));
    case MigrationRoute::kList:
      return api_.list_migrations(
          [respond = std::move(respond), retry](Result<std::vector<MigrationStatus>> list) {
            if (!list) return respond(migration_error(list.status(), retry));
            respond(json_answer(200, migration_list_json(*list)));
          });
    case MigrationRoute::kRebalance: {
      const Status empty = expect_empty_body(body, "POST /v1/rebalance");
      if (!empty) return respond(bad_request(empty.message()));
      return api_.rebalance(batch_answer(std::move(respond), retry));
    }
    case MigrationRoute::kDrainNode: {
      auto node = decode_node_id(id_raw);
      if (!node) return respond(bad_request(node.status().message()));
      return api_.drain_node(std::move(*node), batch_answer(std::move(respond), retry));
    }
    default:
      break;
  }
  auto id = decode_operation_id(id_raw);
  if (!id) return respond(bad_request(id.status().message()));
  switch (route) {
    case MigrationRoute::kGet:
      return api_.get_migration(std::move(*id), status_answer(200, std::move(respond), retry));
    case MigrationRoute::kCancel:
      return migration_control(std::move(*id), MigrationControl::kCancel, body, std::move(respond));
    case MigrationRoute::kPause:
      return migration_control(std::move(*id), MigrationControl::kPause, body, std::move(respond));
    case MigrationRoute::kResume:
      return migration_control(std::move(*id), MigrationControl::kResume, body, std::move(respond));
    case MigrationRoute::kSetBandwidth:
      return migration_control(std::move(*id), MigrationControl::kSetBandwidth, body,
                               std::move(respond));
    default:
      NN_UNREACHABLE("a migration route without an operation id");
  }
}

void HttpRouter::migration_create(const std::string& body, RespondFn respond) const {
  auto request = parse_create_body(body);
  if (!request) return respond(bad_request(request.status().message()));
  api_.create_migration(std::move(*request),
                        batch_answer(std::move(respond), limits_.retry_after_s));
}

void HttpRouter::migration_control(std::string id, MigrationControl control,
                                   const std::string& body, RespondFn respond) const {
  std::uint64_t bandwidth = 0;
  if (control == MigrationControl::kSetBandwidth) {
    auto parsed = parse_bandwidth_body(body);
    if (!parsed) return respond(bad_request(parsed.status().message()));
    bandwidth = *parsed;
  } else if (control != MigrationControl::kCancel) {
    const Status empty = expect_empty_body(body, control == MigrationControl::kPause
                                                     ? "POST /v1/migrations/{id}/pause"
                                                     : "POST /v1/migrations/{id}/resume");
    if (!empty) return respond(bad_request(empty.message()));
  }
  // A cancel is accepted, not done: the rollback (or the finish, after
  // Update) runs on; the other controls take effect as recorded.
  const unsigned http_status = control == MigrationControl::kCancel ? 202 : 200;
  api_.control_migration(std::move(id), control, bandwidth,
                         status_answer(http_status, std::move(respond), limits_.retry_after_s));
}

}  // namespace nodenomad::net
