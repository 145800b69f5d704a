// Sizes, rates, durations, bandwidths and shard lists as the migration
// commands write and read them.
#include <catch2/catch.hpp>

#include <limits>

#include "migrate_cli.hpp"

namespace nodenomad::ctl {
namespace {

TEST_CASE("ctl format: sizes and rates", "[ctl][migrate]") {
  CHECK(format_bytes(0) == "0B");
  CHECK(format_bytes(1023) == "1023B");
  CHECK(format_bytes(1024) == "1.0KB");
  CHECK(format_bytes(1536) == "1.5KB");
  CHECK(format_bytes(50ull << 20) == "50.0MB");
  CHECK(format_bytes(3ull << 30) == "3.0GB");
  CHECK(format_bytes(std::numeric_limits<std::uint64_t>::max()) == "16384.0PB");
  CHECK(format_rate(12.0 * (1 << 20)) == "12.0MB/s");
  CHECK(format_rate(900) == "900B/s");
  CHECK(format_rate(0) == "-");
  CHECK(format_rate(-5) == "-");
  CHECK(format_rate(std::numeric_limits<double>::quiet_NaN()) == "-");
  CHECK(format_rate(std::numeric_limits<double>::infinity()) == "-");
}

TEST_CASE("ctl format: ETA, elapsed time, percent and clock", "[ctl][migrate]") {
  CHECK(format_eta(std::nullopt) == "-");
  CHECK(format_eta(-1.0) == "-");
  CHECK(format_eta(std::numeric_limits<double>::quiet_NaN()) == "-");
  CHECK(format_eta(0.0) == "0s");
  CHECK(format_eta(0.2) == "1s");  // rounded up: never "0s" while bytes remain
  CHECK(format_eta(59.0) == "59s");
  CHECK(format_eta(185.0) == "3m05s");
  CHECK(format_eta(3720.0) == "1h02m");
  CHECK(format_eta(99.0 * 3600 + 3599) == "99h59m");
  CHECK(format_eta(100.0 * 3600) == ">99h");
  CHECK(format_eta(1e300) == ">99h");

  CHECK(format_elapsed_ms(850) == "850ms");
  CHECK(format_elapsed_ms(42'000) == "42.0s");
  CHECK(format_elapsed_ms(185'400) == "3m05s");
  CHECK(format_elapsed_ms(3'720'000) == "1h02m");

  CHECK(format_percent(42.5) == "42.5%");
  CHECK(format_percent(100) == "100%");
  CHECK(format_percent(0) == "0%");
  CHECK(format_percent(33.333) == "33.3%");
  CHECK(format_percent(-0.01) == "0%");
  CHECK(format_percent(std::numeric_limits<double>::quiet_NaN()) == "0%");

  CHECK(format_clock_utc(1'764'151'201'999) == "10:00:01");
  CHECK(format_clock_utc(0) == "00:00:00");
}

TEST_CASE("ctl format: bandwidths", "[ctl][migrate]") {
  CHECK(*parse_bandwidth("50MB") == 50ull << 20);
  CHECK(*parse_bandwidth("50MB/s") == 50ull << 20);
  CHECK(*parse_bandwidth("50mib/S") == 50ull << 20);
  CHECK(*parse_bandwidth("1048576") == 1048576);
  CHECK(*parse_bandwidth(" 2 GB ") == 2ull << 30);
  CHECK(*parse_bandwidth("1") == 1);
  for (const char* bad : {"", "/s", "0", "0MB/s", "-5MB", "1.5MB", "50XB", "MB", "50MB/h"}) {
    INFO(bad);
    CHECK(parse_bandwidth(bad).status().is(StatusCode::kInvalidArgument));
  }
  CHECK_THAT(std::string(parse_bandwidth("50XB").status().message()),
             Catch::Contains("unknown unit") && Catch::Contains("50MB or 50MB/s"));
}

TEST_CASE("ctl format: shard lists", "[ctl][migrate]") {
  CHECK(*parse_shard_list("3,7") == std::vector<std::uint32_t>{3, 7});
  CHECK(*parse_shard_list("7,3") == std::vector<std::uint32_t>{7, 3});  // order kept
  CHECK(*parse_shard_list("0-3, 9") == std::vector<std::uint32_t>{0, 1, 2, 3, 9});
  CHECK(*parse_shard_list("5-5") == std::vector<std::uint32_t>{5});
  CHECK(*parse_shard_list("4294967295") == std::vector<std::uint32_t>{4294967295u});
  CHECK(parse_shard_list("0-4095")->size() == 4096);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "an empty entry"},
      {"3,", "an empty entry"},
      {"3,,4", "an empty entry"},
      {"x", "\"x\" is not a shard id"},
      {"-1", "\"\" is not a shard id"},
      {"4294967296", "is not a shard id (a whole number from 0 to 4294967295)"},
      {"5-3", "the range 5-3 runs backwards; write 3-5"},
      {"1-2-3", "\"2-3\" is not a shard id"},
      {"1,2,1", "shard 1 is listed twice"},
      {"0-3,2", "shard 2 is listed twice"},
      {"0-4096", "more than 4096 shards"},
      {"0-4294967295", "more than 4096 shards"},  // refused without 2^32 steps
  };
  for (const auto& [text, expected] : bad) {
    INFO(text);
    CHECK_THAT(std::string(parse_shard_list(text).status().message()), Catch::Contains(expected));
  }
}

TEST_CASE("ctl format: fit_width", "[ctl][migrate]") {
  CHECK(fit_width("abcdef", 4) == "abcd");
  CHECK(fit_width("abc", 4) == "abc");
  CHECK(fit_width("abc", 0) == "abc");  // 0: unknown width, nothing cut
}

}  // namespace
}  // namespace nodenomad::ctl
