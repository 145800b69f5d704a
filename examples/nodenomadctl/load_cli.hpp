// `nodenomadctl load`: a steady write load for watching a cluster under
// traffic (docs/cli.md, "Load"). Each of `connections` keep-alive
// connections sends PUTs at rate / connections per second, on a fixed
// schedule: a slow answer delays only that connection's next write, and a
// connection that fell far behind skips the writes it missed instead of
// bursting to catch up. Every answer is counted as API.md means it: ok,
// not applied (503, or nothing sent), outcome unknown (504, or no answer
// after the request left) or an error (anything else); the latency of the ok
// answers goes into a histogram.
//
// Everything here is pure or runs on injected I/O (LoadIo), so that
// tests/ctl drives it with a fake clock and fake answers. main.cpp runs one
// run_load_worker() per connection on its own thread, each with its own
// LoadTally, and merges them at the end.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "http_client.hpp"

namespace nodenomad::ctl {

struct LoadOptions {
  std::uint64_t rate_per_s = 200;    // --rate: writes per second, all connections together
  std::uint64_t duration_ms = 0;     // --duration; 0: until interrupted
  std::uint64_t keys = 1000;         // --keys: PUTs cycle over this many keys
  std::uint64_t connections = 2;     // --connections
  std::uint64_t value_bytes = 100;   // --value-size
  std::string key_prefix = "load-";  // --key-prefix
};

inline constexpr std::uint64_t kMaxLoadRate = 100'000;
inline constexpr std::uint64_t kMaxLoadConnections = 64;
inline constexpr std::uint64_t kMaxLoadKeys = 1'000'000'000;
inline constexpr std::uint64_t kMaxLoadValueBytes = 1u << 20;
inline constexpr std::uint64_t kMaxLoadDurationMs = 24ull * 3600 * 1000;
// A connection more than this far behind its schedule (a stall: a leader
// change, a node down) skips the writes it missed (they are counted, not
// sent); within it, it catches up by writing back to back.
inline constexpr std::uint64_t kMaxLagUs = 1'000'000;

// The schedule of one connection, in microseconds on any monotonic clock.
class Pacer {
 public:
  // The first write is due at `first_due_us`, then one every `interval_us`.
  // Precondition: interval_us > 0.
  Pacer(std::uint64_t first_due_us, std::uint64_t interval_us);

  std::uint64_t due_us() const { return due_us_; }
  // The write due at due_us() was answered at `now_us`: the next one is due
  // one interval later, or, when that is more than kMaxLagUs ago, at the
  // last slot of the schedule at or before `now_us` (the writes of the slots
  // in between are skipped and counted).
  void sent(std::uint64_t now_us);
  std::uint64_t skipped() const { return skipped_; }

 private:
  std::uint64_t due_us_;
  std::uint64_t interval_us_;
  std::uint64_t skipped_ = 0;
};

// Latencies in microseconds, in log-linear buckets (16 per power of two:
// within 6.25% of the true value), so that memory stays bounded however
// long the load runs.
class LatencyHistogram {
 public:
  void record(std::uint64_t micros);
  void merge(const LatencyHistogram& other);
  std::uint64_t count() const { return count_; }
  std::uint64_t max_us() const { return max_us_; }
  // The smallest bucket bound at or above the given share of the samples
  // (0 < quantile <= 1), capped at max_us(); 0 when there is none.
  std::uint64_t quantile_us(double quantile) const;

 private:
  static constexpr std::size_t kSubBuckets = 16;
  static constexpr std::size_t kBuckets = 64 * kSubBuckets;
  static std::size_t bucket_of(std::uint64_t micros);
  static std::uint64_t upper_bound_of(std::size_t bucket);

  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_us_ = 0;
};

enum class LoadOutcome { kOk, kNotApplied, kUnknown, kError };

// What an answer to a PUT means, and a short reason for the tally ("503",
// "cannot connect", "504", "no answer", "HTTP 500", "bad reply").
struct ClassifiedLoadAnswer {
  LoadOutcome outcome = LoadOutcome::kError;
  std::string reason;
};
ClassifiedLoadAnswer classify_load_answer(const HttpResult& result);

// Counts of one connection, or of all of them merged.
struct LoadTally {
  std::uint64_t sent = 0;  // requests made (every outcome below)
  std::uint64_t ok = 0;
  std::uint64_t not_applied = 0;
  std::uint64_t unknown = 0;
  std::uint64_t errors = 0;
  std::uint64_t skipped = 0;                     // writes a connection fell too far behind to send
  std::map<std::string, std::uint64_t> reasons;  // of everything but ok; bounded
  LatencyHistogram latency;                      // of ok answers

  void add(const ClassifiedLoadAnswer& answer, std::uint64_t latency_us);
  void merge(const LoadTally& other);
};

// The key and value of write number `sequence` (0, 1, ...): keys cycle
// over key_prefix + 0 .. keys - 1; the value names the write and is padded
// with '.' to value_bytes (never shorter than its name).
std::string load_key(const LoadOptions& options, std::uint64_t sequence);
std::string load_value(const LoadOptions& options, std::uint64_t sequence);

// One connection's side effects, injected.
struct LoadIo {
  std::function<HttpResult(const HttpRequestSpec&)> exchange;
  std::function<std::uint64_t()> now_us;  // monotonic
  // Sleeps until `until_us` or until the load is asked to stop, whichever
  // comes first (the caller wakes early on an interrupt).
  std::function<void(std::uint64_t until_us)> sleep_until_us;
  const std::atomic<bool>* stop = nullptr;  // set: finish the write in flight, then return
};

// Connection `index` of `options.connections`: writes the sequence numbers
// index, index + connections, ... on its schedule (the connections'
// schedules are staggered evenly) from `start_us` until `options.duration_ms`
// has passed since then or *io.stop is set. Returns its tally.
LoadTally run_load_worker(const LoadOptions& options, std::uint64_t index, std::uint64_t start_us,
                          LoadIo& io);

// The summary printed at the end: the counts, the reasons, and p50 / p99 /
// max of the ok answers' latency; with `json`, one JSON object on a line.
std::string render_load_summary(const LoadOptions& options, const std::string& endpoint,
                                const LoadTally& tally, std::uint64_t elapsed_ms, bool json);

// kExitOther when an answer was an error; otherwise 0 when a write was ok
// (or none was made); otherwise kExitCannotConnect when no request could be
// sent at all, and kExitUnavailable when the cluster answered but took none.
int load_exit_code(const LoadTally& tally);

}  // namespace nodenomad::ctl
