// Whole-cluster simulations: determinism, the checks catching deliberate
// bugs, a host-written workload, and the CI budget of seeds.
//
// Environment:
//   NODENOMAD_SIM_SEEDS=<n>  run only the first n seeds of the CI list (the
//                            sanitizer build sets it; docs/simulation.md)
//   NODENOMAD_SIM_SEED=<s>   run only seed s (3 nodes if odd, 5 if even)
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <optional>

#include "nodenomad/logging.hpp"
#include "nodenomad/testing/simulator.hpp"
#include "sim/ci_seeds.hpp"

namespace nodenomad::testing {
namespace {

// Seeds 1..kCiSeeds, each simulating kCiDurationMs of faults and then the
// settling; odd seeds run 3 nodes, even seeds 5.
constexpr std::uint64_t kCiSeeds = 300;
constexpr std::uint64_t kCiDurationMs = 20'000;

void quiet_logs() {
  // Injected I/O errors and torn tails are routine in a simulation.
  set_log_sink([](LogLevel, std::string_view, std::string_view) {});
}

SimResult run_printed(const SimOptions& options) {
  quiet_logs();
  // Printed first: an NN_ASSERT abort in the code under test must not
  // swallow the seed.
  fmt::print("[sim] seed {} nodes {}\n", options.seed, options.node_count);
  std::fflush(stdout);
  SimResult result = run_simulation(options);
  if (!result.passed) fmt::print("{}", result.report());
  return result;
}

SimOptions ci_options(std::uint64_t seed) {
  SimOptions options;
  options.seed = seed;
  options.node_count = seed % 2 == 1 ? 3 : 5;
  options.duration_ms = kCiDurationMs;
  return options;
}

TEST_CASE("a calm cluster serves clients and passes every check", "[sim]") {
  const std::uint32_t nodes = GENERATE(3u, 5u);
  SimOptions options;
  options.seed = 7;
  options.node_count = nodes;
  options.faults = SimFaultProfile::calm();
  options.duration_ms = 5'000;
  const SimResult result = run_printed(options);
  INFO(result.report());
  REQUIRE(result.passed);
  CHECK(result.verdict == Verdict::kOk);
  CHECK(result.stats.ops_ok > 100);
  CHECK(result.stats.ops_unknown == 0);
  CHECK(result.stats.leaders_elected >= 1);
  CHECK(result.stats.crashes == 0);
}

TEST_CASE("one seed replays bit for bit, another seed does not", "[sim]") {
  SimOptions options;
  options.seed = 11;
  options.node_count = 5;
  options.faults = SimFaultProfile::harsh();
  options.duration_ms = 5'000;
  const SimResult first = run_printed(options);
  const SimResult second = run_printed(options);
  REQUIRE(first.passed);
  CHECK(first.stats.crashes > 0);
  CHECK(first.stats.partitions > 0);
  CHECK(first.trace_hash == second.trace_hash);
  CHECK(first.stats.steps == second.stats.steps);
  CHECK(first.stats.ops_ok == second.stats.ops_ok);
  options.seed = 12;
  const SimResult other = run_printed(options);
  CHECK(other.trace_hash != first.trace_hash);
}

// The checks must be able to fail: a runtime that serves reads from its own
// state machine without read_index returns stale values under partitions.
TEST_CASE("stale local reads are caught by the linearizability check", "[sim]") {
  SimOptions options;
  options.node_count = 5;
  options.faults = SimFaultProfile::harsh();
  options.duration_ms = 10'000;
  options.runtime_bug = SimRuntimeBug::kLocalReads;
  std::optional<SimResult> caught;
  for (options.seed = 1; options.seed <= 10 && !caught; ++options.seed) {
    SimResult r = run_simulation(options);
    if (!r.passed) caught = std::move(r);
  }
  REQUIRE(caught.has_value());
  INFO(caught->report());
  CHECK(caught->verdict == Verdict::kIllegal);
  CHECK(caught->failure.find("linearizability") != std::string::npos);
  // The failure report names the seed and shows the events that led there.
  CHECK(caught->report().find(fmt::format("--seed {}", caught->seed)) != std::string::npos);
  CHECK(!caught->trace_tail.empty());
  CHECK(caught->trace_tail.size() <= options.trace_tail_events);
  CHECK(caught->trace_tail.back().find("VIOLATION") != std::string::npos);
  // A failing seed replays exactly too.
  options.seed = caught->seed;
  const SimResult again = run_simulation(options);
  CHECK(again.trace_hash == caught->trace_hash);
  CHECK(again.failure == caught->failure);
}

// A runtime that acknowledges before its fsync loses acknowledged entries
// and votes in a crash: the Raft invariants must notice.
TEST_CASE("acknowledging before the fsync is caught by the Raft invariants", "[sim]") {
  SimOptions options;
  options.node_count = 3;
  options.faults = SimFaultProfile::crashy();
  options.duration_ms = 10'000;
  options.runtime_bug = SimRuntimeBug::kAckBeforePersist;
  RaftConfig raft;
  raft.pre_vote = false;
  raft.check_quorum = false;
  options.raft = raft;
  quiet_logs();
  int caught = 0;
  for (options.seed = 1; options.seed <= 12; ++options.seed) {
    const SimResult r = run_simulation(options);
    if (!r.passed && r.failure.find("raft invariant") != std::string::npos) ++caught;
  }
  CHECK(caught >= 2);
}

// Seeds that, before the guards (RaftConfig::unconfigured_votes and
// members_join_as_learners, set as the node sets them), broke a Raft
// invariant when members were wiped and added back under their ids: two
// leaders in one term, a leader without a committed entry.
constexpr std::uint64_t kRejoinSeeds[] = {1, 19, 21, 32, 47, 58, 83, 129};

SimOptions rejoin_options(std::uint64_t seed) {
  SimOptions options = ci_options(seed);
  options.rejoin_weight = 4;
  return options;
}

TEST_CASE("members wiped and added back under their ids break no invariant", "[sim][rejoin]") {
  std::uint64_t rejoins = 0;
  for (std::uint64_t seed : kRejoinSeeds) {
    const SimResult r = run_printed(rejoin_options(seed));
    INFO(r.report());
    CHECK(r.passed);
    CHECK(r.fault_summary.find("rejoin=") != std::string::npos);
    rejoins += r.stats.rejoins;
  }
  fmt::print("[sim] {} members wiped and added back\n", rejoins);
  CHECK(rejoins >= std::size(kRejoinSeeds));
}

TEST_CASE("a member added back without the guards is caught", "[sim][rejoin]") {
  quiet_logs();
  int caught = 0;
  for (std::uint64_t seed : kRejoinSeeds) {
    SimOptions options = rejoin_options(seed);
    options.runtime_bug = SimRuntimeBug::kUnguardedRejoin;
    const SimResult r = run_simulation(options);
    if (!r.passed && r.failure.find("raft invariant") != std::string::npos) ++caught;
  }
  CHECK(caught >= 3);
}

// A host tests its own application logic with a workload: here a counter
// kept with compare-and-set, whose final check is the host's assertion.
class CounterWorkload final : public SimWorkload {
 public:
  explicit CounterWorkload(bool fail_final) : fail_final_(fail_final) {}

  std::optional<KvOp> next_op(ClientId client, Rng& rng) override {
    if (rng.chance(0.5)) return KvOp::get("counter");
    const std::uint64_t seen = seen_[client];
    return KvOp::set("counter", std::to_string(seen), seen);
  }
  void on_complete(ClientId client, const KvOp& op, Completion completion,
                   const KvResult* result) override {
    ++completions_;
    (void)op;
    if (completion != Completion::kOk) return;
    if (result->kind != KvResultKind::kNotFound && result->kind != KvResultKind::kRemoved) {
      seen_[client] = result->version;
    }
    if (result->kind == KvResultKind::kWritten) ++increments_;
  }
  std::vector<std::string> keys() const override { return {"counter"}; }
  Status check_final(const History& history) const override {
    if (fail_final_) return Status::failed("the host's own check says no");
    if (history.size() != completions_) return Status::failed("a completion was not reported");
    return increments_ > 0 ? Status::ok() : Status::failed("the counter never moved");
  }

 private:
  bool fail_final_;
  std::map<ClientId, std::uint64_t> seen_;
  std::size_t completions_ = 0;
  std::size_t increments_ = 0;
};

TEST_CASE("a host's workload runs under faults and its final check counts", "[sim]") {
  SimOptions options;
  options.seed = 5;
  options.node_count = 3;
  options.duration_ms = 5'000;
  options.faults = SimFaultProfile::harsh();
  options.workload = [] { return std::make_unique<CounterWorkload>(false); };
  const SimResult good = run_printed(options);
  INFO(good.report());
  CHECK(good.passed);
  options.workload = [] { return std::make_unique<CounterWorkload>(true); };
  const SimResult bad = run_simulation(options);  // fails on purpose: no report
  CHECK_FALSE(bad.passed);
  CHECK(bad.failure.find("the host's own check says no") != std::string::npos);
}

// The CI budget: a fixed list of seeds, split in two test cases so that
// `ctest -j2` can run the halves side by side.
void run_ci_seeds(std::uint64_t part, std::uint64_t parts) {
  const std::optional<CiSeeds> seeds = ci_seeds(kCiSeeds, part);
  if (!seeds) return;
  std::uint64_t runs = 0, unknown = 0, steps = 0, simulated_ms = 0, ops = 0;
  for (std::uint64_t seed = seeds->first; seed <= seeds->last; ++seed) {
    // Pairs of seeds alternate between the parts, so each runs 3 and 5 nodes.
    if (!seeds->single && ((seed - 1) / 2) % parts != part) continue;
    const SimResult r = run_printed(ci_options(seed));
    INFO(r.report());
    REQUIRE(r.passed);
    ++runs;
    if (r.verdict == Verdict::kUnknown) ++unknown;
    steps += r.stats.steps;
    simulated_ms += r.stats.simulated_ms;
    ops += r.stats.ops_ok + r.stats.ops_fail + r.stats.ops_unknown;
  }
  fmt::print(
      "[sim] CI part {}/{}: {} seeds passed ({} steps, {} s simulated, {} client operations); "
      "{} histories too large to decide (verdict unknown)\n",
      part + 1, parts, runs, steps, simulated_ms / 1000, ops, unknown);
}

TEST_CASE("CI seeds, first half", "[sim][ci]") { run_ci_seeds(0, 2); }
TEST_CASE("CI seeds, second half", "[sim][ci]") { run_ci_seeds(1, 2); }

}  // namespace
}  // namespace nodenomad::testing
