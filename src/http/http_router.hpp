// HttpRouter: maps one parsed HTTP request (method, target, body) to one
// response, calling the ClientApi when the route needs it. No socket, no
// Beast: tests and the fuzzer call it directly, the session only moves bytes.
//
// Thread safety: route() may be called from any thread, concurrently; the
// router holds no mutable state. `respond` is called exactly once, either
// before route() returns (an error found in the request, or a ClientApi that
// answers at once) or later on whatever thread the ClientApi answers on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodenomad/client_api.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::net {

struct RouterLimits {
  std::size_t max_value_bytes = 1024 * 1024;
  std::size_t max_key_bytes = 1024;
  std::uint32_t retry_after_s = 1;
};

struct RouterRequest {
  std::string_view method;  // "GET", as sent (case-sensitive, RFC 9110)
  std::string_view target;  // origin-form: "/v1/kv/a%2Fb?ttl=5"
  std::string body;
};

struct RouterResponse {
  unsigned status = 200;
  std::string content_type;                                  // empty: no body
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string body;
};

using RespondFn = std::function<void(RouterResponse)>;

// The route a request matched, as a bounded label for metrics: the route
// template ("/v1/kv/{key}"), or "unmatched".
std::string_view route_label(std::string_view target);

// `{"error": {"code": code, "message": message}}` with `status`; 503
// answers carry Retry-After.
RouterResponse error_response(unsigned status, std::string_view code, std::string_view message,
                              std::uint32_t retry_after_s = 1);

// The HTTP status and error code for a ClientApi Status (docs/http_api.md).
std::pair<unsigned, std::string_view> http_status_of(StatusCode code);

// The error answer for a ClientApi Status, as http_status_of maps it; the
// Status's message is the message (its code's name when empty).
RouterResponse status_response(const Status& status, std::uint32_t retry_after_s);

// What a migration route asks of the ClientApi (http_migrations.cpp).
enum class MigrationRoute {
  kCreate,        // POST /v1/migrations
  kList,          // GET /v1/migrations
  kGet,           // GET /v1/migrations/{id}
  kCancel,        // DELETE /v1/migrations/{id}
  kPause,         // POST /v1/migrations/{id}/pause
  kResume,        // POST /v1/migrations/{id}/resume
  kSetBandwidth,  // PUT /v1/migrations/{id}/bandwidth
  kRebalance,     // POST /v1/rebalance
  kDrainNode,     // DELETE /v1/cluster/nodes/{id}
};

class HttpRouter {
 public:
  // `extra_metrics` is appended to ClientApi::metrics_text() on GET /metrics.
  HttpRouter(ClientApi& api, RouterLimits limits, std::function<std::string()> extra_metrics);

  // Returns the route label (as route_label(request.target)).
  std::string_view route(RouterRequest request, RespondFn respond) const;

 private:
  void route_kv(std::string_view method, std::string body, std::string_view query,
                std::string_view key_raw, RespondFn respond) const;
  void kv_put(std::string key, std::string value, std::string_view query, RespondFn respond) const;
  void kv_get(std::string key, std::string_view query, RespondFn respond) const;
  void kv_remove(std::string key, std::string_view query, RespondFn respond) const;
  void cluster_get(RespondFn respond) const;
  void cluster_add_node(const std::string& body, RespondFn respond) const;
  void operations(std::string_view path, RespondFn respond) const;
  // The migration routes (http_migrations.cpp). `id_raw` is the {id} segment
  // as sent (an operation or node id), empty for the routes without one.
  void route_migration(MigrationRoute route, std::string_view id_raw, const std::string& body,
                       RespondFn respond) const;
  void migration_create(const std::string& body, RespondFn respond) const;
  void migration_control(std::string id, MigrationControl control, const std::string& body,
                         RespondFn respond) const;

  ClientApi& api_;
  RouterLimits limits_;
  std::function<std::string()> extra_metrics_;
};

}  // namespace nodenomad::net
