#include "http/http_metrics.hpp"

#include <fmt/format.h>

namespace nodenomad::net {
namespace {

std::string_view method_label(std::string_view method) {
  static constexpr std::array<std::string_view, 7> kKnown = {"GET",  "PUT",   "DELETE", "POST",
                                                             "HEAD", "PATCH", "OPTIONS"};
  for (auto known : kKnown) {
    if (method == known) return known;
  }
  return "other";
}

}  // namespace

void HttpMetrics::record_request(std::string_view route, std::string_view method, unsigned status,
                                 double seconds) {
  const std::string_view method_name = method_label(method);
  std::lock_guard lock(mutex_);
  // A key of owned strings: clang 14 with libstdc++ 12 cannot compare a
  // tuple of strings with a tuple of string_views through std::less<>.
  ++requests_[std::tuple(std::string(route), std::string(method_name), status)];
  auto histogram = durations_.find(route);
  if (histogram == durations_.end()) histogram = durations_.emplace(route, Histogram{}).first;
  for (std::size_t i = 0; i < kBucketBoundsSeconds.size(); ++i) {
    if (seconds <= kBucketBoundsSeconds[i]) {
      ++histogram->second.bucket_counts[i];
      break;
    }
  }
  ++histogram->second.count;
  histogram->second.sum_seconds += seconds;
}

void HttpMetrics::record_connection_refused() {
  std::lock_guard lock(mutex_);
  ++connections_refused_;
}

std::string HttpMetrics::text(std::size_t open_connections) const {
  std::lock_guard lock(mutex_);
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP nodenomad_http_requests_total HTTP requests answered, by route, method "
                 "and status.\n");
  fmt::format_to(it, "# TYPE nodenomad_http_requests_total counter\n");
  for (const auto& [labels, count] : requests_) {
    const auto& [route, method, status] = labels;
    fmt::format_to(it,
                   "nodenomad_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                   route, method, status, count);
  }
  fmt::format_to(it,
                 "# HELP nodenomad_http_request_duration_seconds Time from request read to "
                 "response written.\n");
  fmt::format_to(it, "# TYPE nodenomad_http_request_duration_seconds histogram\n");
  for (const auto& [route, histogram] : durations_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBucketBoundsSeconds.size(); ++i) {
      cumulative += histogram.bucket_counts[i];
      fmt::format_to(
          it, "nodenomad_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n",
          route, kBucketBoundsSeconds[i], cumulative);
    }
    fmt::format_to(
        it, "nodenomad_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n",
        route, histogram.count);
    fmt::format_to(it, "nodenomad_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", route,
                   histogram.sum_seconds);
    fmt::format_to(it, "nodenomad_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", route,
                   histogram.count);
  }
  fmt::format_to(it, "# HELP nodenomad_http_open_connections HTTP connections being served.\n");
  fmt::format_to(it, "# TYPE nodenomad_http_open_connections gauge\n");
  fmt::format_to(it, "nodenomad_http_open_connections {}\n", open_connections);
  fmt::format_to(it,
                 "# HELP nodenomad_http_connections_refused_total Connections answered 503 at once "
                 "(max_connections reached, or stopping).\n");
  fmt::format_to(it, "# TYPE nodenomad_http_connections_refused_total counter\n");
  fmt::format_to(it, "nodenomad_http_connections_refused_total {}\n", connections_refused_);
  return fmt::to_string(out);
}

}  // namespace nodenomad::net
