// Live shard migration with real processes (issue 5, "Proof"): 3 founders on
// loopback, a 4th node joins under a continuous read/write load, and the
// rebalance its join triggers moves shards onto it. One process of the move
// is killed with SIGKILL at a chosen stage and restarted later:
//
//   - the *target* (the joiner) while an operation streams its snapshot
//     (stage `transfer`, some bytes acknowledged and not all);
//   - the *source* of an operation while it is in `update`;
//   - the *target* again, mid-transfer, but kept down until every operation
//     ended, with MIGRATION_TIMEOUT=2s: its moves roll back (the transfer
//     makes no progress), and the copies it kept on disk are no longer
//     placed anywhere; once it is back, the orphan sweep drops them.
//
// Afterwards: no answer API.md does not allow (503 "not applied" and
// "outcome unknown" are allowed; a 500 or an odd 4xx is not), no
// acknowledged write lost, the history linearizable, the preloaded data
// whole, every operation `done` (or `failed` with its reason, when its target
// was the node killed: a rollback is legal), 3 voters per shard and none of
// them a learner, the joiner hosting shards (except when its moves rolled
// back), and every node hosting exactly the shard groups the placement gives
// it, in memory and on disk, once the orphan sweep has run.
//
// Making the stages observable. 800 preloaded keys of 4 KiB make each of the
// 8 shards about 400 KB, and MIGRATION_BANDWIDTH=200KB caps what each node
// streams to all its targets, in chunks of 16 KB, so a transfer takes about
// 2 s or more (3 moves, at most 3 at once onto the joiner) and its progress
// grows chunk by chunk. Update is not throttled, but it
// is several coordinator steps, 100 ms apart at the least (hand leadership
// over if the source leads, the joint change in, the joint change out, the
// placement write, the stage write): measured at 300-450 ms, so a poll of
// GET /v1/migrations every 15 ms sees it every time. Nothing has to be
// paused to widen it. Where in Update the kill lands (before or after the
// leadership hand-over, inside the joint configuration, ...) depends on
// timing, so runs cover the sub-steps between them.
//
// The source of an operation may be the metadata leader (the coordinator)
// or the shard's leader; then the kill also moves the coordinator or the
// shard's leadership, which the test accepts as it comes.
//
// Seeds: NODENOMAD_SEED replays the clients' choices and the preloaded
// values (docs/testing-real-processes.md, "Seeds").
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "cluster/history_checks.hpp"
#include "cluster/kv_workload.hpp"
#include "cluster/load_phases.hpp"
#include "cluster/migration_checks.hpp"
#include "cluster/process_cluster.hpp"
#include "support/test_seed.hpp"

namespace nodenomad::process_testing {
namespace {

using namespace std::chrono_literals;
using testing::HistoryRecorder;

constexpr std::size_t kFounders = 3;
constexpr std::size_t kReplicas = 3;  // REPLICATION_FACTOR's default
constexpr std::size_t kClients = 4;
constexpr std::size_t kPlainKeys = 12;
constexpr std::size_t kPreloadKeys = 800;
constexpr std::size_t kPreloadValueBytes = 4096;
constexpr std::size_t kPreloadClients = 4;
constexpr const char* kNodeBandwidth = "200KB";
// Small chunks, so that a transfer is a stream of ~30 of them and its
// acknowledged bytes grow step by step (the default, 1MB, sends a shard of
// 400 KB in one chunk).
constexpr const char* kChunkSize = "16KB";
// Long enough that a node restarted after kOutage finds its operations
// still running; short enough that a stuck stage ends within the test.
constexpr const char* kMigrationTimeout = "10s";
// The run whose target stays down past the timeout: short, so that its
// operations roll back within a few seconds of the kill.
constexpr const char* kShortMigrationTimeout = "2s";
constexpr auto kShortMigrationTimeoutMs = 2000ms;  // the same, for the checks
constexpr std::uint64_t kWarmUpAnswers = 200;        // ok answers before the join
constexpr std::uint64_t kWritesDuringOutage = 30;    // acknowledged while a node is down
constexpr std::uint64_t kAnswersAfterRestart = 100;  // ok answers once all ended
constexpr auto kOutage = 2000ms;                     // at least, with the load running
constexpr auto kLoadAfterEnd = 500ms;
constexpr auto kStagePollInterval = 15ms;    // watching for the stage to strike in
constexpr auto kEndPollInterval = 100ms;     // waiting for every operation to end
constexpr auto kStageTimeout = 30'000ms;     // scaled: the join until the stage
constexpr auto kAllEndedTimeout = 45'000ms;  // scaled: the restart until all ended
constexpr auto kSweepTimeout = 25'000ms;     // scaled: the orphan sweep (kMaintenanceInterval)
constexpr auto kRollbackTimeout = 30'000ms;  // scaled: the kill until all ended, target down

// The orphan sweep's period (10 s by default).
constexpr const char* kMaintenanceInterval = "1s";

enum class Fault { kTargetInTransfer, kSourceInUpdate };

ClusterOptions founders(std::uint64_t seed, const char* migration_timeout = kMigrationTimeout) {
  ClusterOptions options;
  options.nodes = kFounders;
  options.seed = seed;
  options.extra_env = {{"MIGRATION_BANDWIDTH", kNodeBandwidth},
                       {"MIGRATION_CHUNK_SIZE", kChunkSize},
                       {"MIGRATION_TIMEOUT", migration_timeout},
                       {"MAINTENANCE_INTERVAL", kMaintenanceInterval}};
  return options;
}

// The load goes through every node, the joiner too: until it runs, its
// connections are refused (recorded as failed: nothing was sent).
WorkloadOptions workload_options(std::uint64_t seed, const ProcessCluster& cluster) {
  WorkloadOptions options;
  options.seed = seed;
  options.clients = kClients;
  options.keys = workload_keys(kPlainKeys);
  options.ports = cluster.ports();
  options.request_timeout = scaled(10'000ms);
  // Kept with the logs when the test fails (NODENOMAD_KEEP_CLUSTER_DIRS=1 keeps it always).
  options.trace_path = cluster.temp_dir() + "/requests.trace";
  return options;
}

// Between a tenth and nine tenths of the snapshot acknowledged.
bool streaming_to(const MigrationView& op, const std::string& target) {
  return op.stage == "transfer" && op.target == target && op.bytes_done * 10 >= op.bytes_total &&
         op.bytes_done * 10 <= op.bytes_total * 9 && op.bytes_total > 0;
}

// The operation a fault hits, and every operation as the same answer of
// GET /v1/migrations showed them.
struct FaultPoint {
  MigrationView hit;
  std::vector<MigrationView> all;
};

// Watches GET /v1/migrations until an operation reaches the fault's stage;
// answers it. Run 1 (and the run whose target stays down) waits for a
// snapshot half sent to the joiner, run 2 for any operation in `update`.
FaultPoint wait_for_fault_point(ProcessCluster& cluster, Fault fault, const std::string& joiner) {
  std::optional<MigrationView> chosen;
  const char* what = fault == Fault::kTargetInTransfer
                         ? "an operation in transfer with 10% to 90% of its bytes acknowledged"
                         : "an operation in update";
  std::vector<MigrationView> all = wait_migrations(
      cluster,
      [&](const std::vector<MigrationView>& ops) {
        for (const MigrationView& op : ops) {
          const bool hit =
              fault == Fault::kTargetInTransfer ? streaming_to(op, joiner) : op.stage == "update";
          if (hit) {
            chosen = op;
            return true;
          }
        }
        return false;
      },
      what, scaled(kStageTimeout), kStagePollInterval);
  return {*chosen, std::move(all)};
}

// "m1-s0 shard 0 node-3->node-4 transfer 65536/480154: kill -9 of node-4 (the target)"
void print_kill(const MigrationView& hit, const std::string& victim_id, const char* role) {
  std::string hit_line = describe_migrations({hit});
  hit_line.pop_back();  // its newline
  std::printf("[migration] %s: kill -9 of %s (the %s)\n", hit_line.c_str(), victim_id.c_str(),
              role);
  std::fflush(stdout);
}

// Every operation `done`, or `failed` with its reason when its target is the
// node that was killed.
void check_operations(const std::vector<MigrationView>& ops, const std::string& killed_target) {
  REQUIRE_FALSE(ops.empty());
  for (const MigrationView& op : ops) {
    INFO("operation: " << describe_migrations({op}));
    if (op.stage == "done") continue;
    CHECK(op.stage == "failed");
    CHECK(op.target == killed_target);
    CHECK_FALSE(op.error.empty());
  }
}

// 3 voters per shard, no learner left, each operation's outcome visible in
// the placement, and (when `joiner_must_host`) the joiner hosting shards.
void check_placement(const ClusterView& view, const std::vector<MigrationView>& ops,
                     const std::string& joiner, bool joiner_must_host = true) {
  std::size_t joiner_hosts = 0;
  for (const ShardView& shard : view.shards) {
    INFO("shard " << shard.id << ": replicas " << fmt::format("{}", fmt::join(shard.replicas, ","))
                  << ", learners " << fmt::format("{}", fmt::join(shard.learners, ",")));
    std::vector<std::string> distinct = shard.replicas;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    CHECK(shard.replicas.size() == kReplicas);
    CHECK(distinct.size() == shard.replicas.size());
    CHECK(shard.learners.empty());
    joiner_hosts += std::count(shard.replicas.begin(), shard.replicas.end(), joiner);
  }
  std::map<std::uint64_t, const ShardView*> by_id;
  for (const ShardView& shard : view.shards) by_id[shard.id] = &shard;
  for (const MigrationView& op : ops) {
    INFO("operation: " << describe_migrations({op}));
    REQUIRE(by_id.contains(op.shard));
    const std::vector<std::string>& replicas = by_id.at(op.shard)->replicas;
    const bool has_source = std::count(replicas.begin(), replicas.end(), op.source) > 0;
    const bool has_target = std::count(replicas.begin(), replicas.end(), op.target) > 0;
    // A done move replaced the source by the target; a rolled-back one left
    // the shard as it was.
    CHECK(has_target == (op.stage == "done"));
    CHECK(has_source == (op.stage != "done"));
  }
  std::printf("[placement] %s hosts %zu of %zu shards\n", joiner.c_str(), joiner_hosts,
              view.shards.size());
  std::fflush(stdout);
  if (joiner_must_host) CHECK(joiner_hosts > 0);
}

long long ms_since(SteadyClock::time_point start) {
  return static_cast<long long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count());
}

// The fault, the outage with the load running, and the victim's restart.
void kill_and_restart(ProcessCluster& cluster, const KvWorkload& load, std::size_t victim) {
  const OutcomeCounts before = load.counts();
  cluster.kill9(victim);
  run_load_until(
      load,
      [&](const OutcomeCounts& now) {
        return now.ok_writes - before.ok_writes >= kWritesDuringOutage;
      },
      std::to_string(kWritesDuringOutage) + " writes acknowledged since the kill", kOutage,
      "while the victim is down");
  cluster.start_node(victim);
  cluster.wait_ready();
}

void run_migration_fault(std::uint64_t seed, Fault fault) {
  const auto run_started = SteadyClock::now();
  ProcessCluster cluster(founders(seed));
  cluster.start();
  const std::size_t joiner = cluster.add_joining_node(0);
  const std::string joiner_id = cluster.node_id(joiner);
  const Preload data = make_preload(seed, kPreloadKeys, kPreloadValueBytes);
  preload(cluster, data, kPreloadClients);

  HistoryRecorder recorder;
  KvWorkload load(workload_options(seed, cluster), recorder);
  load.start();
  run_load_for_answers(load, {}, kWarmUpAnswers, 0ms, "warm-up, before the join");

  // The member it joins through adds it, and the metadata leader plans a
  // rebalance at once (NodeOptions::rebalance_on_join).
  cluster.start_node(joiner);
  const MigrationView hit = wait_for_fault_point(cluster, fault, joiner_id).hit;
  const std::string victim_id = fault == Fault::kTargetInTransfer ? hit.target : hit.source;
  print_kill(hit, victim_id, fault == Fault::kTargetInTransfer ? "target" : "source");
  const std::optional<std::size_t> victim = cluster.index_of(victim_id);
  REQUIRE(victim.has_value());
  kill_and_restart(cluster, load, *victim);

  const std::vector<MigrationView> ended = wait_migrations(
      cluster,
      [](const std::vector<MigrationView>& ops) {
        return !ops.empty() && std::all_of(ops.begin(), ops.end(),
                                           [](const MigrationView& op) { return op.ended(); });
      },
      "every operation ended", scaled(kAllEndedTimeout), kEndPollInterval);
  std::printf("[migration] every operation ended:\n%s", describe_migrations(ended).c_str());
  std::fflush(stdout);
  run_load_for_answers(load, load.counts(), kAnswersAfterRestart, kLoadAfterEnd,
                       "after every operation ended");
  load.stop();
  cluster.require_running();

  check_run(cluster, recorder, load, workload_keys(kPlainKeys));
  check_preloaded(cluster, data);
  // The operation hit in `update` is past the point of no return: done.
  const auto hit_end = std::find_if(ended.begin(), ended.end(),
                                    [&](const MigrationView& op) { return op.id == hit.id; });
  REQUIRE(hit_end != ended.end());
  if (fault == Fault::kSourceInUpdate) CHECK(hit_end->stage == "done");
  check_operations(ended, fault == Fault::kTargetInTransfer ? victim_id : std::string());
  const std::optional<ClusterView> view = cluster.cluster_view();
  REQUIRE(view.has_value());
  check_placement(*view, ended, joiner_id);
  const auto swept = wait_hosting_matches_placement(cluster, scaled(kSweepTimeout));
  std::printf("[placement] every node hosts exactly its placed shards (%lld ms after the end)\n",
              static_cast<long long>(swept.count()));
  terminate_all_gracefully(cluster);
  std::printf("[migration] run took %lld ms\n", ms_since(run_started));
  std::fflush(stdout);
}

// --- the target killed mid-transfer stays down past MIGRATION_TIMEOUT ---

// Polls until every operation ended, the target down; prints when the hit
// operation's reason first showed (a rollback in progress keeps its stage,
// with the reason already recorded) and when all had ended.
std::vector<MigrationView> wait_ended_with_target_down(ProcessCluster& cluster,
                                                       const MigrationView& hit,
                                                       SteadyClock::time_point killed) {
  std::string reason_seen;
  const std::vector<MigrationView> ended = wait_migrations(
      cluster,
      [&](const std::vector<MigrationView>& ops) {
        for (const MigrationView& op : ops) {
          if (op.id != hit.id || op.error.empty() || !reason_seen.empty()) continue;
          reason_seen = fmt::format("{} ms after the kill, in stage {}", ms_since(killed),
                                    op.stage);
        }
        return !ops.empty() && std::all_of(ops.begin(), ops.end(),
                                           [](const MigrationView& op) { return op.ended(); });
      },
      "every operation ended, with the target down", scaled(kRollbackTimeout), kEndPollInterval);
  std::printf("[migration] %s's reason first listed %s; every operation ended %lld ms after the "
              "kill (MIGRATION_TIMEOUT %s), the target still down:\n%s",
              hit.id.c_str(), reason_seen.empty() ? "never" : reason_seen.c_str(),
              ms_since(killed), kShortMigrationTimeout,
              describe_migrations(ended).c_str());
  std::fflush(stdout);
  return ended;
}

bool spent_no_time_in(const MigrationView& op, const char* stage) {
  const auto it = op.stage_ms.find(stage);
  return it != op.stage_ms.end() && it->second == 0;
}

// Rolled back before Update because a stage made no progress: `failed`, the
// reason recorded, and no time spent in Update or Cleanup.
void check_rolled_back(const MigrationView& op) {
  INFO("operation: " << describe_migrations({op}));
  CHECK(op.stage == "failed");
  CHECK_THAT(op.error, Catch::Contains(fmt::format("stage made no progress for {} ms",
                                                   kShortMigrationTimeoutMs.count())));
  CHECK(spent_no_time_in(op, "update"));
  CHECK(spent_no_time_in(op, "cleanup"));
}

// With the target down past MIGRATION_TIMEOUT, the operation hit and every
// other one still in prepare or transfer at the kill (neither can pass
// Verify without the target) rolled back. One past Transfer may have gone
// on to `done` (Update needs a majority of the new voters, not the target);
// anything else is a rollback too. The hit one is read back alone as well,
// through GET /v1/migrations/{id}.
void check_rollbacks(ProcessCluster& cluster, const FaultPoint& at_kill,
                     const std::vector<MigrationView>& ended) {
  for (const MigrationView& op : ended) {
    const auto before = std::find_if(at_kill.all.begin(), at_kill.all.end(),
                                     [&](const MigrationView& b) { return b.id == op.id; });
    const bool could_not_pass = op.id == at_kill.hit.id || before == at_kill.all.end() ||
                                before->stage == "prepare" || before->stage == "transfer";
    INFO("at the kill: " << (before == at_kill.all.end() ? std::string("not listed\n")
                                                          : describe_migrations({*before})));
    if (could_not_pass || op.stage != "done") check_rolled_back(op);
  }
  const std::optional<MigrationView> hit = get_migration(cluster, at_kill.hit.id);
  INFO("GET /v1/migrations/" << at_kill.hit.id);
  REQUIRE(hit.has_value());
  check_rolled_back(*hit);
  std::printf("[migration] GET /v1/migrations/%s: %s, error \"%s\"\n", hit->id.c_str(),
              hit->stage.c_str(), hit->error.c_str());
  std::fflush(stdout);
}

std::set<std::uint64_t> minus(const std::set<std::uint64_t>& a, const std::set<std::uint64_t>& b) {
  std::set<std::uint64_t> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

// The copies the target kept on disk that the placement no longer gives it
// (the rollback could not reach it to drop them): the orphan sweep's work
// once it is back. The hit operation's shard must be among them.
std::set<std::uint64_t> leftover_copies(ProcessCluster& cluster, std::size_t target,
                                        const MigrationView& hit) {
  const std::optional<ClusterView> view = cluster.cluster_view();
  REQUIRE(view.has_value());
  const std::set<std::uint64_t> on_disk = shards_on_disk(cluster.data_dir(target));
  const std::set<std::uint64_t> placed = placed_shards(*view, cluster.node_id(target));
  const std::set<std::uint64_t> orphans = minus(on_disk, placed);
  std::printf("[placement] %s, down, keeps shards {%s} on disk; the placement gives it {%s}\n",
              cluster.node_id(target).c_str(), fmt::format("{}", fmt::join(on_disk, ",")).c_str(),
              fmt::format("{}", fmt::join(placed, ",")).c_str());
  std::fflush(stdout);
  INFO("shard " << hit.shard << " of " << hit.id << " should be left on " << cluster.node_id(target)
                << "'s disk, and no longer placed there");
  CHECK(orphans.contains(hit.shard));
  return orphans;
}

// Each leftover copy went by the orphan sweep: the coordinator logged it
// (on whichever node led the metadata group) and the target dropped it.
void check_swept(ProcessCluster& cluster, std::size_t target,
                 const std::set<std::uint64_t>& orphans) {
  const std::string& id = cluster.node_id(target);
  const std::set<std::uint64_t> on_disk = shards_on_disk(cluster.data_dir(target));
  for (const std::uint64_t shard : orphans) {
    const std::string sweep_line = fmt::format("{} holds an orphan copy of shard {};", id, shard);
    std::size_t sweep_lines = 0;
    for (std::size_t i = 0; i < cluster.size(); ++i) {
      sweep_lines += cluster.count_log_lines(i, sweep_line);
    }
    INFO("shard " << shard << ": log lines \"" << sweep_line << "\" on any node, and \"" << id
                  << ": dropped shard " << shard << " \" on " << id);
    CHECK_FALSE(on_disk.contains(shard));
    CHECK(sweep_lines >= 1);
    CHECK(cluster.count_log_lines(target, fmt::format("{}: dropped shard {} ", id, shard)) == 1);
  }
}

void run_target_down_past_timeout(std::uint64_t seed) {
  const auto run_started = SteadyClock::now();
  ProcessCluster cluster(founders(seed, kShortMigrationTimeout));
  cluster.start();
  const std::size_t joiner = cluster.add_joining_node(0);
  const std::string joiner_id = cluster.node_id(joiner);
  const Preload data = make_preload(seed, kPreloadKeys, kPreloadValueBytes);
  preload(cluster, data, kPreloadClients);

  HistoryRecorder recorder;
  KvWorkload load(workload_options(seed, cluster), recorder);
  load.start();
  run_load_for_answers(load, {}, kWarmUpAnswers, 0ms, "warm-up, before the join");
  cluster.start_node(joiner);
  const FaultPoint at_kill = wait_for_fault_point(cluster, Fault::kTargetInTransfer, joiner_id);
  print_kill(at_kill.hit, joiner_id, "target, kept down past MIGRATION_TIMEOUT");
  const OutcomeCounts at_kill_counts = load.counts();
  const auto killed = SteadyClock::now();
  cluster.kill9(joiner);

  // Down until every operation ended: the load runs on meanwhile.
  const std::vector<MigrationView> ended =
      wait_ended_with_target_down(cluster, at_kill.hit, killed);
  run_load_until(
      load,
      [&](const OutcomeCounts& now) {
        return now.ok_writes - at_kill_counts.ok_writes >= kWritesDuringOutage;
      },
      std::to_string(kWritesDuringOutage) + " writes acknowledged since the kill", 0ms,
      "while the target is down");
  check_rollbacks(cluster, at_kill, ended);
  const std::set<std::uint64_t> orphans = leftover_copies(cluster, joiner, at_kill.hit);

  const auto restarted = SteadyClock::now();
  cluster.start_node(joiner);
  cluster.wait_ready();
  run_load_for_answers(load, load.counts(), kAnswersAfterRestart, kLoadAfterEnd,
                       "after the target's restart");
  // The sweep runs while the clients go on.
  const auto swept = wait_hosting_matches_placement(cluster, scaled(kSweepTimeout));
  std::printf("[placement] every node hosts exactly its placed shards, on disk too: %lld ms after "
              "the target's restart (%lld ms of waiting for the sweep)\n",
              ms_since(restarted), static_cast<long long>(swept.count()));
  std::fflush(stdout);
  run_load_for_answers(load, load.counts(), kAnswersAfterRestart, 0ms, "after the orphan sweep");
  load.stop();
  cluster.require_running();

  check_run(cluster, recorder, load, workload_keys(kPlainKeys));
  check_preloaded(cluster, data);
  check_swept(cluster, joiner, orphans);
  // The rollbacks are final: the restart brought no operation back.
  const std::optional<std::vector<MigrationView>> after = list_migrations(cluster);
  REQUIRE(after.has_value());
  CHECK(describe_migrations(*after) == describe_migrations(ended));
  const ClusterView view = cluster.wait_cluster_with_leaders();
  check_placement(view, ended, joiner_id, /*joiner_must_host=*/false);
  terminate_all_gracefully(cluster);
  std::printf("[migration] run took %lld ms\n", ms_since(run_started));
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("migration: hosted shards are read from /metrics, group 0 left out",
          "[cluster][migration]") {
  const std::string metrics =
      "# TYPE nodenomad_raft_term gauge\n"
      "nodenomad_raft_term{group=\"0\"} 3\n"
      "nodenomad_raft_term{group=\"1\"} 2\n"
      "nodenomad_raft_commit_index{group=\"4\"} 9\n"
      "nodenomad_raft_term{group=\"8\"} 2\n"
      "xnodenomad_raft_term{group=\"6\"} 1\n"
      "nodenomad_raft_term{group=\"7";
  CHECK(hosted_shards_in_metrics(metrics) == std::set<std::uint64_t>{0, 7});
  CHECK(hosted_shards_in_metrics("").empty());

  ClusterView view;
  view.shards.push_back({0, "node-1", {"node-1", "node-2"}, {"node-4"}});
  view.shards.push_back({1, "node-2", {"node-2", "node-4"}, {}});
  view.shards.push_back({2, "node-2", {"node-2", "node-3"}, {}});
  CHECK(placed_shards(view, "node-4") == std::set<std::uint64_t>{0, 1});
  CHECK(placed_shards(view, "node-9").empty());
}

TEST_CASE("migration: shards kept on disk are read from DATA_DIR, group 0 left out",
          "[cluster][migration]") {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "nodenomad-disk-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  const fs::path dir(pattern);
  CHECK(shards_on_disk(pattern).empty());  // neither wal/raft nor shards yet
  for (const char* sub : {"wal/raft/g-0", "wal/raft/g-3", "wal/raft/g-x", "shards/s-2",
                          "shards/s-7", "shards/s-7.tmp", "shards/t-5", "raft/g-9"}) {
    fs::create_directories(dir / sub);
  }
  // g-3 is shard 2 (also in shards/), g-0 the metadata group; names that are
  // not exactly the prefix and a number, and raft/ outside wal/, are ignored.
  CHECK(shards_on_disk(pattern) == std::set<std::uint64_t>{2, 7});
  fs::remove_all(dir / "shards");
  CHECK(shards_on_disk(pattern) == std::set<std::uint64_t>{2});
  fs::remove_all(dir);
}

TEST_CASE("migration: 3 -> 4 nodes under load, kill -9 of the target mid-transfer",
          "[cluster][process][migration]") {
  run_migration_fault(test_support::test_seed("migration target kill -9", 0x7461726b),
                      Fault::kTargetInTransfer);
}

TEST_CASE("migration: 3 -> 4 nodes under load, kill -9 of the source mid-update",
          "[cluster][process][migration]") {
  run_migration_fault(test_support::test_seed("migration source kill -9", 0x736f7572),
                      Fault::kSourceInUpdate);
}

TEST_CASE("migration: 3 -> 4 nodes under load, the target killed mid-transfer stays down past "
          "MIGRATION_TIMEOUT",
          "[cluster][process][migration]") {
  run_target_down_past_timeout(
      test_support::test_seed("migration target down past the timeout", 0x74696d65));
}

}  // namespace nodenomad::process_testing
