#include "http/http_migration_json.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "http/http_text.hpp"

namespace nodenomad::net {
namespace {

// 9999-12-31T23:59:59.999Z, the last instant the four-digit form can show.
constexpr std::uint64_t kLatestTimestampMs = 253'402'300'799'999;

// The stages whose time stage_ms records, in its order (index = stage - 1).
constexpr std::array<MigrationStage, 5> kTimedStages = {
    MigrationStage::kPrepare, MigrationStage::kTransfer, MigrationStage::kVerify,
    MigrationStage::kUpdate, MigrationStage::kCleanup};

// Appends `"name":` (with a leading comma unless it opens the object).
void key(std::string& out, std::string_view name) {
  if (out.back() != '{') out += ',';
  append_json_string(out, name);
  out += ':';
}

void field(std::string& out, std::string_view name, std::string_view text) {
  key(out, name);
  append_json_string(out, text);
}

void field(std::string& out, std::string_view name, std::uint64_t number) {
  key(out, name);
  out += std::to_string(number);
}

void bool_field(std::string& out, std::string_view name, bool flag) {
  key(out, name);
  out += flag ? "true" : "false";
}

void raw_field(std::string& out, std::string_view name, std::string_view json) {
  key(out, name);
  out += json;
}

std::string timestamp_or_null(std::uint64_t unix_ms) {
  if (unix_ms == 0) return "null";
  std::string out;
  append_json_string(out, format_utc_timestamp(unix_ms));
  return out;
}

std::string progress_json(const MigrationProgress& progress) {
  std::string out = "{";
  field(out, "bytes_total", progress.bytes_total);
  field(out, "bytes_done", progress.bytes_done);
  field(out, "keys_done", progress.keys_done);
  raw_field(out, "percent", json_number(progress.percent, 2));
  raw_field(out, "rate_bytes_per_s", json_number(progress.rate_bytes_per_s, 1));
  const bool eta_known = progress.eta_s && std::isfinite(*progress.eta_s) && *progress.eta_s >= 0;
  raw_field(out, "eta_s", eta_known ? json_number(*progress.eta_s, 1) : "null");
  field(out, "keys_total", progress.keys_total);
  return out + "}";
}

std::string stage_ms_json(const std::vector<std::uint64_t>& stage_ms) {
  std::string out = "{";
  for (std::size_t i = 0; i < kTimedStages.size(); ++i) {
    field(out, migration_stage_name(kTimedStages[i]), i < stage_ms.size() ? stage_ms[i] : 0);
  }
  return out + "}";
}

}  // namespace

std::string format_utc_timestamp(std::uint64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> time{milliseconds(std::min(unix_ms, kLatestTimestampMs))};
  const auto day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss clock{time - day};
  char text[96];  // 24 bytes needed; room for what -Wformat-truncation assumes
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(date.year()),
                unsigned(date.month()), unsigned(date.day()), int(clock.hours().count()),
                int(clock.minutes().count()), int(clock.seconds().count()),
                int(clock.subseconds().count()));
  return text;
}

std::string json_number(double value, int decimals) {
  if (!std::isfinite(value)) return "0";
  const double scale = std::pow(10.0, decimals);
  double rounded = std::round(value * scale) / scale;
  if (!std::isfinite(rounded)) rounded = value;  // too large to scale: already whole
  if (rounded == 0) rounded = 0;                 // no "-0"
  char text[64];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, rounded);
  return ec == std::errc() ? std::string(text, end) : std::string("0");
}

std::string migration_status_json(const MigrationStatus& status) {
  std::string out = "{";
  field(out, "id", status.id);
  field(out, "shard", status.shard.value());
  field(out, "source", status.source.str());
  field(out, "target", status.target.str());
  field(out, "stage", migration_stage_name(status.stage));
  raw_field(out, "progress", progress_json(status.progress));
  raw_field(out, "started_at", timestamp_or_null(status.started_at_ms));
  raw_field(out, "finished_at", timestamp_or_null(status.finished_at_ms));
  if (status.error.empty()) {
    raw_field(out, "error", "null");
  } else {
    field(out, "error", status.error);
  }
  // Extensions of API.md's shape.
  field(out, "batch_id", status.batch_id);
  bool_field(out, "queued", status.queued);
  bool_field(out, "paused", status.paused);
  bool_field(out, "cancel_requested", status.cancel_requested);
  field(out, "bandwidth_bytes_per_s", status.bandwidth_bytes_per_s);
  raw_field(out, "stage_ms", stage_ms_json(status.stage_ms));
  field(out, "verify_mismatches", std::uint64_t{status.verify_mismatches});
  field(out, "bytes_freed", status.bytes_freed);
  return out + "}";
}

std::string migration_list_json(const std::vector<MigrationStatus>& statuses) {
  std::string out = "{\"migrations\":[";
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    if (i > 0) out += ',';
    out += migration_status_json(statuses[i]);
  }
  return out + "]}";
}

std::string migration_batch_json(const MigrationBatch& batch) {
  std::string out = "{";
  field(out, "id", batch.id);
  key(out, "operations");
  out += '[';
  for (std::size_t i = 0; i < batch.operations.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, batch.operations[i]);
  }
  return out + "]}";
}

}  // namespace nodenomad::net
