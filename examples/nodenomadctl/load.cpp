// `nodenomadctl load` (load_cli.hpp): the schedule, the histogram, the tally,
// one connection's loop, and the summary.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "load_cli.hpp"
#include "migrate_cli.hpp"
#include "server/json_text.hpp"

namespace nodenomad::ctl {
namespace {

// Reasons kept apart in a tally; the rest are counted as "other".
constexpr std::size_t kMaxReasons = 16;
constexpr std::uint64_t kMicrosPerSecond = 1'000'000;

// "0.42ms", "1.23ms", "15.2ms", "120ms", "1.02s".
std::string format_latency_us(std::uint64_t micros) {
  const double ms = static_cast<double>(micros) / 1000.0;
  if (ms < 10) return fmt::format("{:.2f}ms", ms);
  if (ms < 100) return fmt::format("{:.1f}ms", ms);
  if (ms < 1000) return fmt::format("{:.0f}ms", ms);
  return fmt::format("{:.2f}s", ms / 1000.0);
}

std::string reasons_text(const std::map<std::string, std::uint64_t>& reasons,
                         const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    const auto it = reasons.find(name);
    if (it == reasons.end()) continue;
    out += fmt::format("{}{}: {}", out.empty() ? "" : ", ", name, it->second);
  }
  return out.empty() ? "" : "  (" + out + ")";
}

// The reasons of one outcome, in a stable order: the tally's names that
// classify_load_answer() gives that outcome.
std::vector<std::string> reasons_of(const LoadTally& tally, LoadOutcome outcome) {
  std::vector<std::string> names;
  for (const auto& [name, count] : tally.reasons) {
    const bool not_applied = name == "503" || name == "cannot connect";
    const bool unknown = name == "504" || name == "no answer";
    const LoadOutcome of = not_applied ? LoadOutcome::kNotApplied
                           : unknown   ? LoadOutcome::kUnknown
                                       : LoadOutcome::kError;
    if (of == outcome) names.push_back(name);
  }
  return names;
}

std::string summary_json(const std::string& endpoint, const LoadTally& tally,
                         std::uint64_t elapsed_ms) {
  std::string out = "{\"endpoint\":";
  server::append_json_string(out, endpoint);
  out += fmt::format(
      ",\"elapsed_ms\":{},\"sent\":{},\"ok\":{},\"not_applied\":{},\"unknown\":{},"
      "\"errors\":{},\"skipped\":{},\"reasons\":{{",
      elapsed_ms, tally.sent, tally.ok, tally.not_applied, tally.unknown, tally.errors,
      tally.skipped);
  bool first = true;
  for (const auto& [name, count] : tally.reasons) {
    if (!first) out += ",";
    first = false;
    server::append_json_string(out, name);
    out += fmt::format(":{}", count);
  }
  out += fmt::format("}},\"latency_us\":{{\"p50\":{},\"p99\":{},\"max\":{}}}}}\n",
                     tally.latency.quantile_us(0.50), tally.latency.quantile_us(0.99),
                     tally.latency.max_us());
  return out;
}

}  // namespace

// ---- the schedule ----

Pacer::Pacer(std::uint64_t first_due_us, std::uint64_t interval_us)
    : due_us_(first_due_us), interval_us_(std::max<std::uint64_t>(interval_us, 1)) {}

void Pacer::sent(std::uint64_t now_us) {
  due_us_ += interval_us_;
  if (now_us <= due_us_ + kMaxLagUs) return;
  // Far behind: skip the writes that were due meanwhile, keeping the phase,
  // so the next one is due now rather than a burst of them.
  const std::uint64_t missed = (now_us - due_us_) / interval_us_;
  skipped_ += missed;
  due_us_ += missed * interval_us_;
}

// ---- the histogram ----

std::size_t LatencyHistogram::bucket_of(std::uint64_t micros) {
  if (micros < kSubBuckets) return static_cast<std::size_t>(micros);
  const auto top_bit = static_cast<std::size_t>(std::bit_width(micros) - 1);  // >= 4
  const std::size_t sub = static_cast<std::size_t>(micros >> (top_bit - 4)) & (kSubBuckets - 1);
  return (top_bit - 3) * kSubBuckets + sub;
}

std::uint64_t LatencyHistogram::upper_bound_of(std::size_t bucket) {
  if (bucket < kSubBuckets) return bucket;
  const std::size_t top_bit = bucket / kSubBuckets + 3;
  const std::uint64_t sub = bucket % kSubBuckets;
  const std::uint64_t lower = (kSubBuckets + sub) << (top_bit - 4);
  return lower + ((std::uint64_t{1} << (top_bit - 4)) - 1);
}

void LatencyHistogram::record(std::uint64_t micros) {
  ++buckets_[bucket_of(micros)];
  ++count_;
  max_us_ = std::max(max_us_, micros);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_us_ = std::max(max_us_, other.max_us_);
}

std::uint64_t LatencyHistogram::quantile_us(double quantile) const {
  if (count_ == 0) return 0;
  const double wanted = std::ceil(std::clamp(quantile, 0.0, 1.0) * static_cast<double>(count_));
  const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(upper_bound_of(i), max_us_);
  }
  return max_us_;
}

// ---- answers and tallies ----

ClassifiedLoadAnswer classify_load_answer(const HttpResult& result) {
  if (!result.reply) {
    switch (result.failure) {
      case TransportFailure::kCannotConnect:
        return {LoadOutcome::kNotApplied, "cannot connect"};
      case TransportFailure::kNoReply:
        return {LoadOutcome::kUnknown, "no answer"};
      case TransportFailure::kBadReply:
        return {LoadOutcome::kError, "bad reply"};
    }
  }
  switch (result.reply->status) {
    case 200:
      return {LoadOutcome::kOk, ""};
    case 503:
      return {LoadOutcome::kNotApplied, "503"};
    case 504:
      return {LoadOutcome::kUnknown, "504"};
    default:
      return {LoadOutcome::kError, fmt::format("HTTP {}", result.reply->status)};
  }
}

void LoadTally::add(const ClassifiedLoadAnswer& answer, std::uint64_t latency_us) {
  ++sent;
  switch (answer.outcome) {
    case LoadOutcome::kOk:
      ++ok;
      latency.record(latency_us);
      return;
    case LoadOutcome::kNotApplied:
      ++not_applied;
      break;
    case LoadOutcome::kUnknown:
      ++unknown;
      break;
    case LoadOutcome::kError:
      ++errors;
      break;
  }
  const bool kept = reasons.size() < kMaxReasons || reasons.contains(answer.reason);
  ++reasons[kept ? answer.reason : "other"];
}

void LoadTally::merge(const LoadTally& other) {
  sent += other.sent;
  ok += other.ok;
  not_applied += other.not_applied;
  unknown += other.unknown;
  errors += other.errors;
  skipped += other.skipped;
  for (const auto& [name, count] : other.reasons) {
    const bool kept = reasons.size() < kMaxReasons || reasons.contains(name);
    reasons[kept ? name : "other"] += count;
  }
  latency.merge(other.latency);
}

std::string load_key(const LoadOptions& options, std::uint64_t sequence) {
  return options.key_prefix + std::to_string(sequence % std::max<std::uint64_t>(options.keys, 1));
}

std::string load_value(const LoadOptions& options, std::uint64_t sequence) {
  std::string value = "nodenomadctl-load-" + std::to_string(sequence);
  if (value.size() < options.value_bytes) value.resize(options.value_bytes, '.');
  return value;
}

// ---- one connection ----

LoadTally run_load_worker(const LoadOptions& options, std::uint64_t index, std::uint64_t start_us,
                          LoadIo& io) {
  const std::uint64_t connections = std::max<std::uint64_t>(options.connections, 1);
  const std::uint64_t rate = std::max<std::uint64_t>(options.rate_per_s, 1);
  // Connection i writes every connections / rate seconds, offset by i / rate.
  Pacer pacer(start_us + index * kMicrosPerSecond / rate, connections * kMicrosPerSecond / rate);
  const std::uint64_t end_us =
      options.duration_ms == 0 ? UINT64_MAX : start_us + options.duration_ms * 1000;
  LoadTally tally;
  std::uint64_t sequence = index;
  while ((io.stop == nullptr || !io.stop->load()) && pacer.due_us() < end_us) {
    const std::uint64_t now = io.now_us();
    if (now < pacer.due_us()) {
      io.sleep_until_us(pacer.due_us());  // may wake early: both conditions are checked again
      continue;
    }
    const HttpRequestSpec put{"PUT", "/v1/kv/" + percent_encode(load_key(options, sequence)),
                              load_value(options, sequence), "application/octet-stream"};
    const HttpResult result = io.exchange(put);
    const std::uint64_t answered = io.now_us();
    tally.add(classify_load_answer(result), answered - std::min(answered, now));
    pacer.sent(answered);
    sequence += connections;
  }
  tally.skipped = pacer.skipped();
  return tally;
}

// ---- the summary ----

std::string render_load_summary(const LoadOptions& options, const std::string& endpoint,
                                const LoadTally& tally, std::uint64_t elapsed_ms, bool json) {
  if (json) return summary_json(endpoint, tally, elapsed_ms);
  const double seconds = static_cast<double>(std::max<std::uint64_t>(elapsed_ms, 1)) / 1000.0;
  std::string out = fmt::format(
      "load: {} writes to {} in {} ({:.1f}/s; asked {}/s over {} connection{}, {} keys, {} "
      "values)\n",
      tally.sent, endpoint, format_elapsed_ms(elapsed_ms),
      static_cast<double>(tally.sent) / seconds, options.rate_per_s, options.connections,
      options.connections == 1 ? "" : "s", options.keys, format_bytes(options.value_bytes));
  out += fmt::format("  ok            {:>8}\n", tally.ok);
  out += fmt::format("  not applied   {:>8}{}\n", tally.not_applied,
                     reasons_text(tally.reasons, reasons_of(tally, LoadOutcome::kNotApplied)));
  out += fmt::format("  unknown       {:>8}{}\n", tally.unknown,
                     reasons_text(tally.reasons, reasons_of(tally, LoadOutcome::kUnknown)));
  out += fmt::format("  errors        {:>8}{}\n", tally.errors,
                     reasons_text(tally.reasons, reasons_of(tally, LoadOutcome::kError)));
  if (tally.skipped > 0) {
    out += fmt::format("  skipped       {:>8}  (a connection fell behind its schedule)\n",
                       tally.skipped);
  }
  if (tally.latency.count() == 0) return out + "  latency (ok)  -\n";
  return out + fmt::format("  latency (ok)  p50 {}  p99 {}  max {}\n",
                           format_latency_us(tally.latency.quantile_us(0.50)),
                           format_latency_us(tally.latency.quantile_us(0.99)),
                           format_latency_us(tally.latency.max_us()));
}

int load_exit_code(const LoadTally& tally) {
  if (tally.errors > 0) return kExitOther;
  if (tally.ok > 0 || tally.sent == 0) return kExitOk;
  const auto refused = tally.reasons.find("cannot connect");
  if (refused != tally.reasons.end() && refused->second == tally.sent) return kExitCannotConnect;
  return kExitUnavailable;
}

}  // namespace nodenomad::ctl
