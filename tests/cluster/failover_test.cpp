// Faults under load with real processes: kill -9 (or SIGTERM) of the node
// leading the most shards, and kill -9 of the whole cluster at once. Client threads keep
// reading and writing through every node meanwhile; afterwards the recorded
// history, ended by one linearizable read of every key, must be
// linearizable, and every acknowledged write must still be visible or have
// been superseded.
//
// Nothing here waits a fixed time and hopes: each phase polls for what it
// needs (answers counted, a node ready) with a deadline that names it. The
// outage lasts at least kOutage so that the load meets the failover, and
// longer if the survivors have not yet acknowledged kWritesDuringOutage.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <catch2/catch.hpp>
#include <functional>
#include <map>

#include "cluster/history_checks.hpp"
#include "cluster/kv_workload.hpp"
#include "cluster/load_phases.hpp"
#include "cluster/process_cluster.hpp"
#include "support/test_seed.hpp"

namespace nodenomad::process_testing {
namespace {

using namespace std::chrono_literals;
using testing::HistoryRecorder;

constexpr std::size_t kClients = 4;
constexpr std::size_t kPlainKeys = 12;
constexpr std::uint64_t kWarmUpAnswers = 200;        // ok answers before the fault
constexpr std::uint64_t kWritesDuringOutage = 50;    // acknowledged while a node is down
constexpr std::uint64_t kAnswersAfterRestart = 200;  // ok answers once all are back
constexpr auto kOutage = 2500ms;
constexpr auto kLoadAfterRestart = 1000ms;

std::vector<std::string> make_keys() { return workload_keys(kPlainKeys); }

ClusterOptions three_nodes(std::uint64_t seed) {
  ClusterOptions options;
  options.nodes = 3;
  options.seed = seed;
  return options;
}

WorkloadOptions workload_options(std::uint64_t seed, const ProcessCluster& cluster) {
  WorkloadOptions options;
  options.seed = seed;
  options.clients = kClients;
  options.keys = make_keys();
  options.ports = cluster.ports();
  options.request_timeout = scaled(10'000ms);
  return options;
}

// Prints the run's counts, requires no answer API.md does not allow, then
// the history checks.
void check_run(ProcessCluster& cluster, HistoryRecorder& recorder, const KvWorkload& load) {
  process_testing::check_run(cluster, recorder, load, make_keys());
}

enum class Fault { kKill9, kSigterm };

// The node that leads the most shards, by GET /v1/cluster.
std::string busiest_leader(ProcessCluster& cluster) {
  const ClusterView view = cluster.wait_cluster_with_leaders();
  const std::map<std::string, std::size_t> led = view.shards_led();
  std::string busiest;
  for (const auto& [node, count] : led) {
    if (busiest.empty() || count > led.at(busiest)) busiest = node;
  }
  std::printf("[cluster] %s leads %zu of %zu shards (metadata leader %s)\n", busiest.c_str(),
              led.at(busiest), view.shards.size(), view.metadata_leader.c_str());
  return busiest;
}

// While `victim` is down: every key, whichever shard holds it, must take
// writes again (its shards failed over to the survivors), GET /v1/cluster
// must name surviving leaders only, and the outage lasts at least kOutage.
void run_load_through_outage(ProcessCluster& cluster, const KvWorkload& load,
                             const std::string& victim, const OutcomeCounts& before,
                             SteadyClock::time_point down_since) {
  run_load_until(
      load,
      [&](const OutcomeCounts& now) {
        return every_key_written_since(before, now) &&
               now.ok_writes - before.ok_writes >= kWritesDuringOutage;
      },
      "a write acknowledged on every key since the fault", 0ms, "every key writable again");
  std::printf("[cluster] every key took a write %lld ms after the fault\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         SteadyClock::now() - down_since)
                                         .count()));
  const ClusterView failed_over = cluster.wait_cluster_view(
      [&](const ClusterView& seen) {
        return seen.every_shard_has_leader() && !seen.shards_led().contains(victim);
      },
      "every shard led by a survivor");
  std::printf("[cluster] shards led after the failover: %s\n",
              fmt::format("{}", fmt::join(failed_over.shards_led(), ", ")).c_str());
  run_load_until(
      load, [](const OutcomeCounts&) { return true; }, "the outage to last",
      std::chrono::duration_cast<std::chrono::milliseconds>(kOutage -
                                                            (SteadyClock::now() - down_since)),
      "while the leader is down");
}

// 3 nodes under load; the busiest leader is killed (or stopped), the load
// goes on, the node comes back on its data, the load goes on; then checks.
void run_leader_fault(std::uint64_t seed, Fault fault) {
  ProcessCluster cluster(three_nodes(seed));
  cluster.start();
  HistoryRecorder recorder;
  KvWorkload load(workload_options(seed, cluster), recorder);
  load.start();
  run_load_for_answers(load, {}, kWarmUpAnswers, 0ms, "warm-up");

  const std::string victim_id = busiest_leader(cluster);
  const std::optional<std::size_t> victim = cluster.index_of(victim_id);
  REQUIRE(victim.has_value());
  const OutcomeCounts before = load.counts();
  const auto down_since = SteadyClock::now();
  if (fault == Fault::kKill9) {
    cluster.kill9(*victim);
  } else {
    // A graceful stop under load: in-flight requests are answered honestly
    // (the checker holds every 503 to "not applied"), and the exit is 0.
    CHECK(cluster.terminate(*victim).describe() == "exit 0");
  }
  run_load_through_outage(cluster, load, victim_id, before, down_since);

  cluster.restart(*victim);
  cluster.wait_ready();
  run_load_for_answers(load, load.counts(), kAnswersAfterRestart, kLoadAfterRestart,
                       "after the restart");
  load.stop();
  cluster.require_running();

  check_run(cluster, recorder, load);
  terminate_all_gracefully(cluster);
}

}  // namespace

TEST_CASE(
    "kill -9 of the node leading most shards under load: linearizable, no acknowledged write lost",
    "[cluster][process]") {
  run_leader_fault(test_support::test_seed("cluster leader kill -9", 0x6b696c6c), Fault::kKill9);
}

TEST_CASE(
    "SIGTERM of the node leading most shards under load: exit 0, linearizable, no acknowledged "
    "write lost",
    "[cluster][process]") {
  run_leader_fault(test_support::test_seed("cluster leader SIGTERM", 0x7465726d), Fault::kSigterm);
}

TEST_CASE(
    "kill -9 of every node at once under load, then restart: linearizable, no acknowledged write "
    "lost",
    "[cluster][process]") {
  const std::uint64_t seed = test_support::test_seed("cluster full restart", 0x66756c6c);
  ProcessCluster cluster(three_nodes(seed));
  cluster.start();
  HistoryRecorder recorder;
  KvWorkload load(workload_options(seed, cluster), recorder);
  load.start();
  run_load_for_answers(load, {}, kWarmUpAnswers, 0ms, "warm-up");

  cluster.kill9_all();
  const OutcomeCounts at_kill = load.counts();
  for (std::size_t i = 0; i < cluster.size(); ++i) cluster.restart(i);
  cluster.wait_ready();
  std::printf("[load] while the cluster was down and starting: %llu failed, %llu unknown\n",
              static_cast<unsigned long long>(load.counts().fail - at_kill.fail),
              static_cast<unsigned long long>(load.counts().unknown - at_kill.unknown));
  run_load_for_answers(load, load.counts(), kAnswersAfterRestart, kLoadAfterRestart,
                       "after the restart");
  load.stop();
  cluster.require_running();

  check_run(cluster, recorder, load);
  terminate_all_gracefully(cluster);
}

}  // namespace nodenomad::process_testing
