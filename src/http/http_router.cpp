// The HTTP routes of API.md, without sockets; the migration routes are in
// http_migrations.cpp. These two are the only translation units that include
// Boost.JSON (compile time): the session code asks error_response() for its
// JSON bodies.
#include "http/http_router.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include <boost/json.hpp>

#include "http/http_text.hpp"

namespace nodenomad::net {
namespace json = boost::json;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kKvPrefix = "/v1/kv/";
constexpr std::string_view kNodesPrefix = "/v1/cluster/nodes/";
constexpr std::string_view kMigrationsPrefix = "/v1/migrations/";
// A user-supplied path quoted back in a message is cut to this many bytes.
constexpr std::size_t kQuotedPathMaxBytes = 200;
constexpr std::uint64_t kMaxTtlSeconds = std::numeric_limits<std::uint64_t>::max() / 1000;

enum class RouteId {
  kKv,
  kCluster,
  kClusterNodes,
  kClusterNode,
  kMigrations,
  kMigration,
  kMigrationPause,
  kMigrationResume,
  kMigrationBandwidth,
  kRebalance,
  kHealth,
  kReady,
  kMetrics,
  kUnmatched,
};

struct Route {
  RouteId id;
  std::string_view label;  // bounded, for metrics
  std::string_view allow;  // the Allow header of a 405
  std::string_view rest;   // the raw {key} or {id} segment
};

bool has_prefix_and_one_segment(std::string_view path, std::string_view prefix) {
  return path.starts_with(prefix) && path.size() > prefix.size() &&
         path.substr(prefix.size()).find('/') == std::string_view::npos;
}

// /v1/migrations/{id} and its three actions; {id} is one non-empty segment.
Route match_migration_route(std::string_view path) {
  const std::string_view rest = path.substr(kMigrationsPrefix.size());
  const std::size_t slash = rest.find('/');
  const std::string_view id = rest.substr(0, slash);
  if (id.empty()) return {RouteId::kUnmatched, "unmatched", "", ""};
  if (slash == std::string_view::npos) {
    return {RouteId::kMigration, "/v1/migrations/{id}", "GET, DELETE", id};
  }
  const std::string_view action = rest.substr(slash + 1);
  if (action == "pause") {
    return {RouteId::kMigrationPause, "/v1/migrations/{id}/pause", "POST", id};
  }
  if (action == "resume") {
    return {RouteId::kMigrationResume, "/v1/migrations/{id}/resume", "POST", id};
  }
  if (action == "bandwidth") {
    return {RouteId::kMigrationBandwidth, "/v1/migrations/{id}/bandwidth", "PUT", id};
  }
  return {RouteId::kUnmatched, "unmatched", "", ""};
}

Route match_route(std::string_view path) {
  // The key is matched on the raw path, so an encoded "%2F" stays in the key
  // instead of starting a new segment.
  if (path.starts_with(kKvPrefix)) {
    return {RouteId::kKv, "/v1/kv/{key}", "GET, PUT, DELETE", path.substr(kKvPrefix.size())};
  }
  if (path == "/v1/kv") return {RouteId::kKv, "/v1/kv/{key}", "GET, PUT, DELETE", ""};
  if (path == "/v1/cluster") return {RouteId::kCluster, "/v1/cluster", "GET", ""};
  if (path == "/v1/cluster/nodes") {
    return {RouteId::kClusterNodes, "/v1/cluster/nodes", "POST", ""};
  }
  if (has_prefix_and_one_segment(path, kNodesPrefix)) {
    return {RouteId::kClusterNode, "/v1/cluster/nodes/{id}", "DELETE",
            path.substr(kNodesPrefix.size())};
  }
  if (path == "/v1/migrations") return {RouteId::kMigrations, "/v1/migrations", "GET, POST", ""};
  if (path.starts_with(kMigrationsPrefix)) return match_migration_route(path);
  if (path == "/v1/rebalance") return {RouteId::kRebalance, "/v1/rebalance", "POST", ""};
  if (path == "/health") return {RouteId::kHealth, "/health", "GET", ""};
  if (path == "/ready") return {RouteId::kReady, "/ready", "GET", ""};
  if (path == "/metrics") return {RouteId::kMetrics, "/metrics", "GET", ""};
  return {RouteId::kUnmatched, "unmatched", "", ""};
}

bool method_allowed(std::string_view method, std::string_view allow) {
  std::size_t pos = 0;
  while (pos < allow.size()) {
    std::size_t end = allow.find(", ", pos);
    if (end == std::string_view::npos) end = allow.size();
    if (allow.substr(pos, end - pos) == method) return true;
    pos = end + 2;
  }
  return false;
}

RouterResponse json_response(unsigned status, const json::value& body) {
  RouterResponse response;
  response.status = status;
  response.content_type = kJson;
  response.body = json::serialize(body);
  return response;
}

json::string json_text(std::string_view bytes) { return json::string(to_valid_utf8(bytes)); }

// One query parameter, both halves percent-decoded.
struct QueryParam {
  std::string name;
  std::string value;
};

std::string join_names(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto name : names) out += (out.empty() ? "" : ", ") + std::string(name);
  return out.empty() ? "none" : out;
}

// Parses one "name=value" piece of a query string.
Result<QueryParam> parse_query_param(std::string_view part,
                                     const std::vector<std::string_view>& accepted,
                                     std::string_view where) {
  const std::size_t eq = part.find('=');
  auto name = percent_decode(part.substr(0, eq));
  if (!name) {
    return Status::invalid_argument("a query parameter name " +
                                    std::string(name.status().message()));
  }
  const std::string shown = to_valid_utf8(name->substr(0, kQuotedPathMaxBytes));
  if (std::find(accepted.begin(), accepted.end(), *name) == accepted.end()) {
    return Status::invalid_argument("unknown query parameter '" + shown + "' for " +
                                    std::string(where) + "; accepted: " + join_names(accepted));
  }
  if (eq == std::string_view::npos) {
    return Status::invalid_argument("query parameter '" + shown + "' needs a value (" + shown +
                                    "=...)");
  }
  auto value = percent_decode(part.substr(eq + 1));
  if (!value) {
    return Status::invalid_argument("query parameter '" + shown + "' " +
                                    std::string(value.status().message()));
  }
  return QueryParam{std::move(*name), std::move(*value)};
}

// Parses "a=1&b=2". Each name must be one of `accepted` and appear at most
// once: a misspelt parameter ("tll=5") silently ignored would be a write
// without its TTL, so it is refused with a message that lists the accepted
// names (etcd's v2 API and Consul ignore unknown parameters; we prefer the
// clear error).
Result<std::vector<QueryParam>> parse_query(std::string_view query,
                                            const std::vector<std::string_view>& accepted,
                                            std::string_view where) {
  std::vector<QueryParam> params;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;  // "a=1&&b=2", or a trailing '&'
    NN_ASSIGN_OR_RETURN(QueryParam param, parse_query_param(part, accepted, where));
    for (const auto& seen : params) {
      if (seen.name == param.name) {
        return Status::invalid_argument("query parameter '" +
                                        to_valid_utf8(param.name.substr(0, kQuotedPathMaxBytes)) +
                                        "' is given twice");
      }
    }
    params.push_back(std::move(param));
  }
  return params;
}

const std::string* find_param(const std::vector<QueryParam>& params, std::string_view name) {
  for (const auto& param : params) {
    if (param.name == name) return &param.value;
  }
  return nullptr;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Result<std::optional<std::uint64_t>> parse_if_version(const std::vector<QueryParam>& params) {
  const std::string* text = find_param(params, "if_version");
  if (text == nullptr) return std::optional<std::uint64_t>();
  auto version = parse_u64(*text);
  if (!version) {
    return Status::invalid_argument(
        "if_version must be a whole number >= 0 (0 = only if the key is absent), e.g. "
        "if_version=3");
  }
  return std::optional<std::uint64_t>(*version);
}

Result<std::optional<std::uint64_t>> parse_ttl_ms(const std::vector<QueryParam>& params) {
  const std::string* text = find_param(params, "ttl");
  if (text == nullptr) return std::optional<std::uint64_t>();
  auto seconds = parse_u64(*text);
  if (!seconds || *seconds == 0 || *seconds > kMaxTtlSeconds) {
    return Status::invalid_argument(
        "ttl must be a whole number of seconds, at least 1 and at most " +
        std::to_string(kMaxTtlSeconds) + ", e.g. ttl=60");
  }
  return std::optional<std::uint64_t>(*seconds * 1000);
}

Result<ReadConsistency> parse_consistency(const std::vector<QueryParam>& params) {
  const std::string* text = find_param(params, "consistency");
  if (text == nullptr || *text == "linearizable") return ReadConsistency::kLinearizable;
  if (*text == "lease") return ReadConsistency::kLease;
  if (*text == "stale") return ReadConsistency::kStale;
  return Status::invalid_argument("consistency must be one of linearizable, lease, stale");
}

bool valid_host_port(std::string_view address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const auto port = parse_u64(address.substr(colon + 1));
  return port && *port >= 1 && *port <= 65535;
}

// Validates {"id": "node-4", "address": "host:port"}; the message names the
// field at fault and the accepted form.
Status parse_add_node_body(const std::string& body, std::string& id, std::string& address) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(body, ec);
  const json::object* object = ec ? nullptr : parsed.if_object();
  if (object == nullptr) {
    return Status::invalid_argument(
        R"(the body must be a JSON object {"id": "node-4", "address": "host:port"})");
  }
  for (const auto& field : *object) {
    if (field.key() != "id" && field.key() != "address") {
      return Status::invalid_argument("unknown field \"" + to_valid_utf8(field.key()) +
                                      "\"; accepted: id, address");
    }
  }
  const json::value* id_value = object->if_contains("id");
  if (id_value == nullptr || !id_value->is_string() || !is_valid_node_id(id_value->get_string())) {
    return Status::invalid_argument(
        "field \"id\" must be a string of 1 to 64 letters, digits, '-', '_' or '.' (e.g. "
        "\"node-4\")");
  }
  const json::value* address_value = object->if_contains("address");
  if (address_value == nullptr || !address_value->is_string() ||
      !valid_host_port(address_value->get_string())) {
    return Status::invalid_argument(
        "field \"address\" must be a string \"host:port\" with a port from 1 to 65535 "
        "(e.g. \"127.0.0.1:3003\")");
  }
  id = std::string(id_value->get_string());
  address = std::string(address_value->get_string());
  return Status::ok();
}

json::array node_list(const std::vector<NodeId>& ids) {
  json::array out;
  for (const auto& id : ids) out.emplace_back(json_text(id.str()));
  return out;
}

json::value cluster_json(const ClusterInfo& info) {
  json::array nodes;
  for (const auto& node : info.nodes) {
    nodes.emplace_back(json::object{{"id", json_text(node.id.str())},
                                    {"address", json_text(node.address)},
                                    {"status", json_text(node.status)},
                                    {"shards_hosted", node.shards_hosted},
                                    {"shards_led", node.shards_led}});
  }
  json::array shards;
  for (const auto& shard : info.shards) {
    shards.emplace_back(json::object{{"id", shard.id.value()},
                                     {"epoch", shard.epoch.value()},
                                     {"replicas", node_list(shard.replicas)},
                                     {"learners", node_list(shard.learners)},
                                     {"leader", json_text(shard.leader.str())},
                                     {"keys", shard.keys},
                                     {"bytes", shard.bytes}});
  }
  return json::object{{"cluster_id", json_text(info.cluster_id)},
                      {"metadata_leader", json_text(info.metadata_leader.str())},
                      {"nodes", std::move(nodes)},
                      {"shards", std::move(shards)}};
}

// API.md's error shape; callers may add fields beside "error".
json::object error_object(std::string_view code, std::string_view message) {
  return json::object{
      {"error", json::object{{"code", json_text(code)}, {"message", json_text(message)}}}};
}

RouterResponse version_mismatch_response(const KvReply& reply) {
  std::string message(reply.status.message());
  if (message.empty()) message = "if_version did not match the key's current version";
  json::object body = error_object("version_mismatch", message);
  body["current_version"] = reply.current_version;
  return json_response(412, body);
}

MigrationRoute migration_route_of(RouteId route, std::string_view method) {
  switch (route) {
    case RouteId::kClusterNode:
      return MigrationRoute::kDrainNode;
    case RouteId::kMigrations:
      return method == "GET" ? MigrationRoute::kList : MigrationRoute::kCreate;
    case RouteId::kMigration:
      return method == "GET" ? MigrationRoute::kGet : MigrationRoute::kCancel;
    case RouteId::kMigrationPause:
      return MigrationRoute::kPause;
    case RouteId::kMigrationResume:
      return MigrationRoute::kResume;
    case RouteId::kMigrationBandwidth:
      return MigrationRoute::kSetBandwidth;
    case RouteId::kRebalance:
      return MigrationRoute::kRebalance;
    default:
      NN_UNREACHABLE("not a migration route");
  }
  return MigrationRoute::kRebalance;
}

}  // namespace

std::string_view route_label(std::string_view target) {
  return match_route(target.substr(0, target.find('?'))).label;
}

RouterResponse error_response(unsigned status, std::string_view code, std::string_view message,
                              std::uint32_t retry_after_s) {
  RouterResponse response = json_response(status, error_object(code, message));
  if (status == 503) response.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return response;
}

RouterResponse status_response(const Status& status, std::uint32_t retry_after_s) {
  const auto [http_status, code] = http_status_of(status.code());
  std::string message(status.message());
  if (message.empty()) message = std::string(status_code_name(status.code()));
  return error_response(http_status, code, message, retry_after_s);
}

std::pair<unsigned, std::string_view> http_status_of(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return {200, "ok"};
    case StatusCode::kNotFound:
      return {404, "not_found"};
    case StatusCode::kVersionMismatch:
      return {412, "version_mismatch"};
    case StatusCode::kInvalidArgument:
      return {400, "invalid_argument"};
    // Not applied, and another try (here or at another node) may succeed.
    case StatusCode::kUnavailable:
    case StatusCode::kBusy:
    case StatusCode::kNotLeader:
    case StatusCode::kAborted:
    case StatusCode::kFailed:
      return {503, "unavailable"};
    case StatusCode::kTimeout:
      return {504, "timeout"};
    case StatusCode::kAlreadyExists:
      return {409, "already_exists"};
    case StatusCode::kNotSupported:
      return {501, "not_implemented"};
    case StatusCode::kCorruption:
    case StatusCode::kIOError:
      return {500, "internal_error"};
  }
  return {500, "internal_error"};
}

HttpRouter::HttpRouter(ClientApi& api, RouterLimits limits,
                       std::function<std::string()> extra_metrics)
    : api_(api), limits_(limits), extra_metrics_(std::move(extra_metrics)) {}

std::string_view HttpRouter::route(RouterRequest request, RespondFn respond) const {
  const std::string_view target = request.target;
  if (!target.starts_with('/')) {
    respond(error_response(400, "invalid_argument",
                           "the request target must be a path starting with '/' (origin-form)"));
    return "unmatched";
  }
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  const Route route = match_route(path);
  if (route.id == RouteId::kUnmatched) {
    respond(error_response(404, "not_found",
                           "no route for " + std::string(path.substr(0, kQuotedPathMaxBytes)) +
                               " (see API.md for the routes)"));
    return route.label;
  }
  if (!method_allowed(request.method, route.allow)) {
    RouterResponse response =
        error_response(405, "method_not_allowed",
                       std::string(route.label) + " accepts " + std::string(route.allow));
    response.headers.emplace_back("Allow", std::string(route.allow));
    respond(std::move(response));
    return route.label;
  }
  switch (route.id) {
    case RouteId::kKv:
      route_kv(request.method, std::move(request.body), query, route.rest, std::move(respond));
      break;
    case RouteId::kCluster:
      cluster_get(std::move(respond));
      break;
    case RouteId::kClusterNodes:
      cluster_add_node(request.body, std::move(respond));
      break;
    case RouteId::kHealth:
    case RouteId::kReady:
    case RouteId::kMetrics:
      operations(path, std::move(respond));
      break;
    default: {
      // No migration route takes a query parameter; one is refused rather
      // than ignored, as on every /v1/ route.
      const std::string where = std::string(request.method) + " " + std::string(route.label);
      auto params = parse_query(query, {}, where);
      if (!params) {
        respond(error_response(400, "invalid_argument", params.status().message()));
        break;
      }
      route_migration(migration_route_of(route.id, request.method), route.rest, request.body,
                      std::move(respond));
    }
  }
  return route.label;
}

void HttpRouter::route_kv(std::string_view method, std::string body, std::string_view query,
                          std::string_view key_raw, RespondFn respond) const {
  auto key = percent_decode(key_raw);
  if (!key) {
    respond(error_response(400, "invalid_key", "the key " + std::string(key.status().message())));
    return;
  }
  if (key->empty() || key->size() > limits_.max_key_bytes) {
    respond(error_response(400, "invalid_key",
                           "the key is " + std::to_string(key->size()) +
                               " bytes once percent-decoded; it must be 1 to " +
                               std::to_string(limits_.max_key_bytes) + " bytes (/v1/kv/{key})"));
    return;
  }
  if (method == "PUT") {
    kv_put(std::move(*key), std::move(body), query, std::move(respond));
  } else if (method == "GET") {
    kv_get(std::move(*key), query, std::move(respond));
  } else {
    kv_remove(std::move(*key), query, std::move(respond));
  }
}

void HttpRouter::kv_put(std::string key, std::string value, std::string_view query,
                        RespondFn respond) const {
  if (value.size() > limits_.max_value_bytes) {
    respond(error_response(413, "value_too_large",
                           "the value is " + std::to_string(value.size()) + " bytes; at most " +
                               std::to_string(limits_.max_value_bytes) + " allowed"));
    return;
  }
  auto params = parse_query(query, {"ttl", "if_version"}, "PUT /v1/kv/{key}");
  if (!params) return respond(error_response(400, "invalid_argument", params.status().message()));
  PutOptions options;
  auto ttl_ms = parse_ttl_ms(*params);
  auto if_version = parse_if_version(*params);
  if (!ttl_ms) return respond(error_response(400, "invalid_argument", ttl_ms.status().message()));
  if (!if_version) {
    return respond(error_response(400, "invalid_argument", if_version.status().message()));
  }
  options.ttl_ms = *ttl_ms;
  options.if_version = *if_version;
  std::string shown_key = to_valid_utf8(key);
  api_.put(std::move(key), std::move(value), options,
           [respond = std::move(respond), shown_key = std::move(shown_key),
            retry = limits_.retry_after_s](KvReply reply) {
             if (reply.status.is_ok()) {
               respond(json_response(200, json::object{{"key", json::string(shown_key)},
                                                       {"version", reply.version}}));
             } else if (reply.status.is(StatusCode::kVersionMismatch)) {
               respond(version_mismatch_response(reply));
             } else {
               respond(status_response(reply.status, retry));
             }
           });
}

void HttpRouter::kv_get(std::string key, std::string_view query, RespondFn respond) const {
  auto params = parse_query(query, {"consistency"}, "GET /v1/kv/{key}");
  if (!params) return respond(error_response(400, "invalid_argument", params.status().message()));
  auto consistency = parse_consistency(*params);
  if (!consistency) {
    return respond(error_response(400, "invalid_argument", consistency.status().message()));
  }
  GetOptions options;
  options.consistency = *consistency;
  api_.get(std::move(key), options,
           [respond = std::move(respond), retry = limits_.retry_after_s](KvReply reply) {
             if (!reply.status.is_ok()) {
               if (reply.status.is(StatusCode::kNotFound)) {
                 return respond(
                     error_response(404, "not_found", "the key does not exist or has expired"));
               }
               return respond(status_response(reply.status, retry));
             }
             RouterResponse response;
             response.content_type = "application/octet-stream";
             response.body = std::move(reply.value);
             response.headers.emplace_back("X-NodeNomad-Version", std::to_string(reply.version));
             if (reply.expires_in_ms) {
               response.headers.emplace_back("X-NodeNomad-Expires-In-Ms",
                                             std::to_string(*reply.expires_in_ms));
             }
             respond(std::move(response));
           });
}

void HttpRouter::kv_remove(std::string key, std::string_view query, RespondFn respond) const {
  auto params = parse_query(query, {"if_version"}, "DELETE /v1/kv/{key}");
  if (!params) return respond(error_response(400, "invalid_argument", params.status().message()));
  auto if_version = parse_if_version(*params);
  if (!if_version) {
    return respond(error_response(400, "invalid_argument", if_version.status().message()));
  }
  RemoveOptions options;
  options.if_version = *if_version;
  api_.remove(std::move(key), options,
              [respond = std::move(respond), retry = limits_.retry_after_s](KvReply reply) {
                // A missing key is not an error for DELETE: API.md answers
                // {"deleted": false}, whichever way the node reports it.
                if (reply.status.is_ok() || reply.status.is(StatusCode::kNotFound)) {
                  const bool deleted = reply.status.is_ok() && reply.deleted;
                  return respond(json_response(200, json::object{{"deleted", deleted}}));
                }
                if (reply.status.is(StatusCode::kVersionMismatch)) {
                  return respond(version_mismatch_response(reply));
                }
                respond(status_response(reply.status, retry));
              });
}

void HttpRouter::cluster_get(RespondFn respond) const {
  api_.cluster_info(
      [respond = std::move(respond), retry = limits_.retry_after_s](Result<ClusterInfo> info) {
        if (!info) return respond(status_response(info.status(), retry));
        respond(json_response(200, cluster_json(*info)));
      });
}

void HttpRouter::cluster_add_node(const std::string& body, RespondFn respond) const {
  std::string id;
  std::string address;
  Status valid = parse_add_node_body(body, id, address);
  if (!valid) return respond(error_response(400, "invalid_argument", valid.message()));
  json::value answer = json::object{{"id", id}, {"address", address}};
  api_.add_node(NodeId(id), address,
                [respond = std::move(respond), answer = std::move(answer),
                 retry = limits_.retry_after_s](Status status) {
                  if (!status) return respond(status_response(status, retry));
                  respond(json_response(201, answer));
                });
}

void HttpRouter::operations(std::string_view path, RespondFn respond) const {
  const json::string node = json_text(api_.node_id().str());
  if (path == "/health") {
    return respond(json_response(200, json::object{{"status", "ok"}, {"node", node}}));
  }
  if (path == "/ready") {
    if (api_.is_ready()) {
      return respond(json_response(200, json::object{{"ready", true}, {"node", node}}));
    }
    // The error shape plus the positive answer's fields, so that a probe can
    // read either the same way.
    json::object body =
        error_object("unavailable", "the node has not joined its cluster or caught up yet");
    body["ready"] = false;
    body["node"] = node;
    RouterResponse response = json_response(503, body);
    response.headers.emplace_back("Retry-After", std::to_string(limits_.retry_after_s));
    return respond(std::move(response));
  }
  RouterResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = api_.metrics_text();
  if (!response.body.empty() && response.body.back() != '\n') response.body += '\n';
  if (extra_metrics_) response.body += extra_metrics_();
  respond(std::move(response));
}

}  // namespace nodenomad::net
