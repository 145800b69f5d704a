// sim_soak: runs whole-cluster simulations seed after seed until time runs
// out, and reports every failure as a JSON line.
//
//   sim_soak --seconds 600 [--first-seed S] [--nodes 3|5] [--duration-ms D]
//   sim_soak --quick                 CI smoke run: a couple of short seeds
//   sim_soak --seed S [--trace]      replay one seed (and print every event)
//   --verbose                        a line for every seed as it starts
//   --rejoin                         also take members out, wipe them and
//                                    add them back under the same id
//   --bug ack|local|rejoin           run with a deliberate runtime bug (acks
//                                    before fsync, reads skipping
//                                    read_index, or a member added back
//                                    without the guards): failures are
//                                    expected
//
// Without --nodes, odd seeds run 3 nodes and even seeds 5. Each seed runs in
// a child process, so an NN_ASSERT abort inside the code under test is
// reported as that seed's failure and the soak goes on. The real clock is
// read only by the soak loop (src/testing/soak_driver.hpp), to decide when to
// stop; the simulations never see it. Output: one JSON line per failure, then
// one summary line. The exit code is non-zero if any seed failed.
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "nodenomad/logging.hpp"
#include "nodenomad/testing/simulator.hpp"
#include "testing/soak_driver.hpp"

namespace {

using nodenomad::soak::SoakFlags;
using nodenomad::testing::SimOptions;
using nodenomad::testing::SimRuntimeBug;

constexpr nodenomad::soak::SoakProgram kProgram{
    "sim_soak",
    "sim_soak --seconds N [--first-seed S] [--nodes 3|5] [--duration-ms D] | --quick | --seed S "
    "[--trace]"};
constexpr std::uint64_t kDurationMs = 20'000;
constexpr std::uint64_t kQuickDurationMs = 3'000;
// As often as a crash in the harsh profile.
constexpr std::uint32_t kRejoinWeight = 4;

struct Args {
  SoakFlags soak;
  std::uint32_t nodes = 0;  // 0: 3 for odd seeds, 5 for even ones
  SimRuntimeBug bug = SimRuntimeBug::kNone;
  bool rejoin = false;
};

Args parse(int argc, char** argv) {
  Args a;
  a.soak.duration_ms = kDurationMs;
  nodenomad::soak::SoakCommandLine line(kProgram, argc, argv);
  while (line.next()) {
    if (line.take_common(a.soak)) continue;
    const std::string_view flag = line.flag();
    if (flag == "--nodes") {
      a.nodes = static_cast<std::uint32_t>(line.number());
      if (a.nodes < 1 || a.nodes > 7) line.fail("--nodes must be 1 to 7");
    } else if (flag == "--rejoin") {
      a.rejoin = true;
    } else if (flag == "--bug") {
      const std::string_view which = line.word("--bug needs ack, local or rejoin");
      if (which == "ack") {
        a.bug = SimRuntimeBug::kAckBeforePersist;
      } else if (which == "local") {
        a.bug = SimRuntimeBug::kLocalReads;
      } else if (which == "rejoin") {
        a.bug = SimRuntimeBug::kUnguardedRejoin;
        a.rejoin = true;
      } else {
        line.fail("--bug needs ack, local or rejoin");
      }
    } else {
      line.fail("unknown flag");
    }
  }
  return a;
}

SimOptions options_for(const Args& a, std::uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.node_count = a.nodes != 0 ? a.nodes : (seed % 2 == 1 ? 3 : 5);
  o.duration_ms = a.soak.duration_ms;
  o.runtime_bug = a.bug;
  o.rejoin_weight = a.rejoin ? kRejoinWeight : 0;
  return o;
}

nodenomad::soak::SoakSeeds soak_seeds(const Args& a) {
  nodenomad::soak::SoakSeeds seeds;
  seeds.run = [&a](std::uint64_t seed) {
    return nodenomad::soak::outcome_of(nodenomad::testing::run_simulation(options_for(a, seed)));
  };
  seeds.replay_command = [&a](std::uint64_t seed) {
    return fmt::format("sim_soak --seed {} --nodes {}{} --no-fork --trace", seed,
                       options_for(a, seed).node_count, a.rejoin ? " --rejoin" : "");
  };
  seeds.died_fields = [&a](std::uint64_t seed) {
    return fmt::format(",\"nodes\":{}", options_for(a, seed).node_count);
  };
  seeds.on_start = [&a](std::uint64_t seed) {
    fmt::print("{{\"running\":{},\"nodes\":{}}}\n", seed, options_for(a, seed).node_count);
  };
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  // Injected I/O errors and torn tails are routine here: keep the library's
  // own log quiet unless a replay asks to see everything.
  if (!a.soak.trace) {
    nodenomad::set_log_sink([](nodenomad::LogLevel, std::string_view, std::string_view) {});
  }
  if (a.soak.replay_seed) {
    return nodenomad::soak::replay_seed(options_for(a, *a.soak.replay_seed), a.soak.trace,
                                        nodenomad::testing::run_simulation);
  }
  if (a.soak.quick) a.soak.duration_ms = kQuickDurationMs;
  return nodenomad::soak::run_soak(kProgram, a.soak, soak_seeds(a));
}
