// Sizes, rates, durations and shard lists as nodenomadctl reads and writes
// them for migrations. Pure functions.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <set>

#include "migrate_cli.hpp"
#include "server/config_values.hpp"

namespace nodenomad::ctl {
namespace {

// A cluster has at most 4096 shards (SHARD_COUNT), so a list never needs more.
constexpr std::size_t kMaxShardsListed = 4096;
constexpr std::uint64_t kMaxShardId = 0xFFFF'FFFF;

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

Result<std::uint32_t> parse_shard_id(std::string_view text) {
  auto id = server::parse_bounded_uint(trim(text), 0, kMaxShardId);
  if (!id.is_ok()) {
    return Status::invalid_argument(
        fmt::format("{} is not a shard id (a whole number from 0 to {}); expected e.g. 3,7 or "
                    "0-3,9",
                    server::quote_for_message(trim(text)), kMaxShardId));
  }
  return static_cast<std::uint32_t>(*id);
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{}B", bytes);
  constexpr std::string_view kUnits[] = {"KB", "MB", "GB", "TB", "PB"};
  double scaled = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (scaled >= 1024 && unit + 1 < std::size(kUnits)) {
    scaled /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f}{}", scaled, kUnits[unit]);
}

std::string format_rate(double bytes_per_s) {
  if (!std::isfinite(bytes_per_s) || bytes_per_s <= 0) return "-";
  return format_bytes(static_cast<std::uint64_t>(std::llround(std::min(bytes_per_s, 1e18)))) + "/s";
}

std::string format_eta(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0) return "-";
  constexpr double kHundredHours = 100.0 * 3600;
  if (*seconds >= kHundredHours) return ">99h";
  const auto s = static_cast<std::uint64_t>(std::ceil(*seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string format_elapsed_ms(std::uint64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000);
  const std::uint64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string format_percent(double percent) {
  if (!std::isfinite(percent)) percent = 0;
  std::string text = fmt::format("{:.1f}", percent);
  if (text.ends_with(".0")) text.resize(text.size() - 2);
  if (text == "-0") text = "0";
  return text + "%";
}

std::string format_clock_utc(std::uint64_t unix_ms) {
  const std::uint64_t s = unix_ms / 1000 % 86'400;
  return fmt::format("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60);
}

Result<std::uint64_t> parse_bandwidth(std::string_view text) {
  std::string_view size = trim(text);
  if (size.size() > 2 && (size.ends_with("/s") || size.ends_with("/S"))) {
    size.remove_suffix(2);
  }
  auto bytes = server::parse_size_bytes(size);
  if (!bytes.is_ok()) {
    return Status::invalid_argument(fmt::format(
        "{}; a bandwidth is such a size per second: 50MB or 50MB/s", bytes.status().message()));
  }
  if (*bytes == 0) {
    return Status::invalid_argument("a bandwidth is at least 1 byte per second (e.g. 50MB)");
  }
  return *bytes;
}

Result<std::vector<std::uint32_t>> parse_shard_list(std::string_view text) {
  std::vector<std::uint32_t> shards;
  std::set<std::uint32_t> seen;
  const auto add = [&](std::uint32_t shard) -> Status {
    if (!seen.insert(shard).second) {
      return Status::invalid_argument(fmt::format("shard {} is listed twice", shard));
    }
    if (shards.size() == kMaxShardsListed) {
      return Status::invalid_argument(fmt::format("more than {} shards; a cluster has at most {}",
                                                  kMaxShardsListed, kMaxShardsListed));
    }
    shards.push_back(shard);
    return Status::ok();
  };
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view piece = trim(text.substr(0, comma));
    if (piece.empty()) {
      return Status::invalid_argument("an empty entry; expected shard ids such as 3,7 or 0-3,9");
    }
    const std::size_t dash = piece.find('-');
    NN_ASSIGN_OR_RETURN(const std::uint32_t first, parse_shard_id(piece.substr(0, dash)));
    std::uint32_t last = first;
    if (dash != std::string_view::npos) {
      NN_ASSIGN_OR_RETURN(last, parse_shard_id(piece.substr(dash + 1)));
      if (last < first) {
        return Status::invalid_argument(
            fmt::format("the range {} runs backwards; write {}-{}", piece, last, first));
      }
    }
    for (std::uint64_t shard = first; shard <= last; ++shard) {
      NN_RETURN_IF_ERROR(add(static_cast<std::uint32_t>(shard)));
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return shards;
}

std::string fit_width(std::string text, std::size_t width) {
  if (width > 0 && text.size() > width) text.resize(width);
  return text;
}

}  // namespace nodenomad::ctl
