// check_history_with_final_reads (history_checks.hpp).
#include "cluster/history_checks.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <catch2/catch.hpp>
#include <map>

#include "cluster/kv_workload.hpp"
#include "nodenomad/testing/linearizability.hpp"

namespace nodenomad::process_testing {
namespace {

constexpr std::chrono::milliseconds kFinalReadTimeout{30'000};  // scaled, per key

}  // namespace

std::map<std::string, testing::KvResult> check_history_with_final_reads(
    ProcessCluster& cluster, testing::HistoryRecorder& recorder,
    const std::vector<std::string>& keys) {
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.running(i)) ports.push_back(cluster.port(i));
  }
  REQUIRE_FALSE(ports.empty());
  std::map<std::string, testing::KvResult> final_reads;
  for (const std::string& key : keys) {
    const std::optional<testing::KvResult> read =
        final_read(recorder, kFinalReaderClient, ports, key, scaled(kFinalReadTimeout));
    INFO("no node answered a linearizable GET of " << testing::printable_bytes(key) << " within "
                                                   << scaled(kFinalReadTimeout).count() << " ms");
    REQUIRE(read.has_value());
    final_reads[key] = *read;
  }
  const testing::History history = recorder.snapshot();

  const std::vector<std::string> lost = find_lost_writes(history, final_reads);
  INFO("acknowledged writes lost:\n" << fmt::format("{}", fmt::join(lost, "\n")));
  CHECK(lost.empty());

  const auto checked = testing::check_linearizability(history);
  INFO(checked.status().to_string());
  REQUIRE(checked.is_ok());
  std::printf("[checker] %s: %zu operations, %zu keys, %llu states explored\n",
              std::string(testing::verdict_name(checked->verdict)).c_str(), history.size(),
              checked->keys.size(), static_cast<unsigned long long>(checked->states_explored));
  std::fflush(stdout);
  if (checked->verdict == testing::Verdict::kUnknown) {
    WARN("the linearizability checker ran out of budget (kUnknown):\n" << checked->explanation);
  }
  INFO(checked->explanation);
  CHECK(checked->verdict != testing::Verdict::kIllegal);
  return final_reads;
}

}  // namespace nodenomad::process_testing
