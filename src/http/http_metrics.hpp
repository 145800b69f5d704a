// HttpMetrics: request counters and latency histograms of the HTTP front
// door, rendered in the Prometheus text exposition format (version 0.0.4).
//
// Thread safety: every method may be called from any thread; one mutex
// guards the tables and is never held while calling out. Label values are
// bounded by construction (route templates, a fixed method list, status
// codes), so the tables cannot grow with client input.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace nodenomad::net {

class HttpMetrics {
 public:
  // Upper bounds (seconds) of the latency buckets, Prometheus's defaults
  // extended down to 0.5 ms: a loopback request takes well under 1 ms.
  static constexpr std::array<double, 14> kBucketBoundsSeconds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  // One answered request: `route` a route template, `method` as sent (an
  // unusual one is counted as "other"), `seconds` from the last byte of the
  // request read to the last byte of the response written.
  void record_request(std::string_view route, std::string_view method, unsigned status,
                      double seconds);
  void record_connection_refused();

  std::string text(std::size_t open_connections) const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kBucketBoundsSeconds.size()> bucket_counts{};  // not cumulative
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };

  mutable std::mutex mutex_;
  // Request counts by (route, method, status).
  std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
  // std::less<> lets the per-request lookup use a string_view.
  std::map<std::string, Histogram, std::less<>> durations_;
  std::uint64_t connections_refused_ = 0;
};

}  // namespace nodenomad::net
