// Phases of a real-process test under load (load_phases.hpp).
#include "cluster/load_phases.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <catch2/catch.hpp>
#include <cstdio>

#include "cluster/history_checks.hpp"

namespace nodenomad::process_testing {

std::vector<std::string> workload_keys(std::size_t plain) {
  using namespace std::string_literals;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < plain; ++i) keys.push_back(fmt::format("key-{}", i));
  keys.push_back("odd/key with space");
  keys.push_back("nul\0and\xff"s);  // 8 bytes
  return keys;
}

void run_load_until(const KvWorkload& load, const std::function<bool(const OutcomeCounts&)>& done,
                    const std::string& what, std::chrono::milliseconds at_least,
                    const char* phase) {
  const auto started = SteadyClock::now();
  const bool reached = load.wait_until(
      [&](const OutcomeCounts& now) {
        return done(now) && SteadyClock::now() - started >= at_least;
      },
      scaled(kPhaseTimeout));
  INFO("phase: " << phase << "; answers so far: " << load.counts().describe());
  INFO("waited " << scaled(kPhaseTimeout).count() << " ms for " << what << " and at least "
                 << at_least.count() << " ms of load");
  REQUIRE(reached);
  std::printf("[load] %s: %s\n", phase, load.counts().describe().c_str());
  std::fflush(stdout);
}

void run_load_for_answers(const KvWorkload& load, const OutcomeCounts& since, std::uint64_t answers,
                          std::chrono::milliseconds at_least, const char* phase) {
  run_load_until(
      load, [&](const OutcomeCounts& now) { return now.ok - since.ok >= answers; },
      std::to_string(answers) + " ok answers", at_least, phase);
}

bool every_key_written_since(const OutcomeCounts& since, const OutcomeCounts& now) {
  for (std::size_t i = 0; i < now.ok_writes_by_key.size(); ++i) {
    if (now.ok_writes_by_key[i] <= since.ok_writes_by_key.at(i)) return false;
  }
  return true;
}

void check_run(ProcessCluster& cluster, testing::HistoryRecorder& recorder, const KvWorkload& load,
               const std::vector<std::string>& keys) {
  const OutcomeCounts counts = load.counts();
  std::printf("[load] total: %s\n", counts.describe().c_str());
  for (const auto& [reason, count] : load.fail_reasons()) {
    std::printf("[load] failed (not applied) %llu times: %s\n",
                static_cast<unsigned long long>(count), reason.c_str());
  }
  for (const auto& [reason, count] : load.unknown_reasons()) {
    std::printf("[load] unknown outcome %llu times: %s\n", static_cast<unsigned long long>(count),
                reason.c_str());
  }
  std::fflush(stdout);
  INFO("unexpected answers: " << fmt::format("{}", fmt::join(load.unexpected_answers(), "\n")));
  CHECK(counts.unexpected == 0);
  check_history_with_final_reads(cluster, recorder, keys);
}

void terminate_all_gracefully(ProcessCluster& cluster) {
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.running(i)) CHECK(cluster.terminate(i).describe() == "exit 0");
  }
}

}  // namespace nodenomad::process_testing
