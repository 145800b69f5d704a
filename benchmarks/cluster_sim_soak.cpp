// cluster_sim_soak: runs whole-node simulations with migrations under faults
// (nodenomad/testing/cluster_simulator.hpp) seed after seed until time runs
// out, and reports every failure as a JSON line with the command that
// replays it.
//
//   cluster_sim_soak --seconds 600 [--first-seed S] [--duration-ms D]
//   cluster_sim_soak --quick              CI smoke run: two short seeds
//   cluster_sim_soak --seed S [--trace]   replay one seed (and print every event)
//   --duplicate-requests                  let the network duplicate forwarded
//                                         requests too (docs/simulation.md)
//   --diverge P                           migration targets silently lose a
//                                         digest bucket before a Verify digest
//                                         with chance P (Verify must repair it)
//   --trace-group G                       with --trace: every Raft message of
//                                         group G too (0 = metadata, s+1 = shard s)
//   --verbose                             a line for every seed as it ends
//
// Each seed runs in a child process, so an NN_ASSERT abort inside the code
// under test is reported as that seed's failure and the soak goes on. The
// real clock is read only by the soak loop (src/testing/soak_driver.hpp), to
// decide when to stop; the simulations never see it. Output: one JSON line
// per failure, then a summary line. The exit code is non-zero if any seed
// failed.
#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nodenomad/logging.hpp"
#include "nodenomad/testing/cluster_simulator.hpp"
#include "testing/soak_driver.hpp"

namespace {

using nodenomad::soak::SoakFlags;
using nodenomad::testing::ClusterSimOptions;

constexpr nodenomad::soak::SoakProgram kProgram{
    "cluster_sim_soak",
    "cluster_sim_soak --seconds N [--first-seed S] [--duration-ms D] [--duplicate-requests] "
    "[--diverge P] | --quick | --seed S [--trace]"};
constexpr std::uint64_t kDurationMs = 15'000;
constexpr std::uint64_t kQuickDurationMs = 5'000;

struct Args {
  SoakFlags soak;
  bool duplicate_requests = false;
  double diverge = 0;
  std::optional<std::uint64_t> trace_group;
};

Args parse(int argc, char** argv) {
  Args a;
  a.soak.duration_ms = kDurationMs;
  nodenomad::soak::SoakCommandLine line(kProgram, argc, argv);
  while (line.next()) {
    if (line.take_common(a.soak)) continue;
    const std::string_view flag = line.flag();
    if (flag == "--duplicate-requests") {
      a.duplicate_requests = true;
    } else if (flag == "--diverge") {
      a.diverge = line.probability();
    } else if (flag == "--trace-group") {
      a.trace_group = line.number();
    } else {
      line.fail("unknown flag");
    }
  }
  return a;
}

ClusterSimOptions options_for(const Args& a, std::uint64_t seed) {
  ClusterSimOptions o;
  o.seed = seed;
  o.duration_ms = a.soak.duration_ms;
  o.duplicate_requests = a.duplicate_requests;
  o.diverge_probability = a.diverge;
  o.trace_raft_group = a.trace_group;
  return o;
}

std::string replay_command(const Args& a, std::uint64_t seed) {
  return fmt::format("cluster_sim_soak --seed {}{}{}{} --trace", seed,
                     a.soak.duration_ms != kDurationMs
                         ? fmt::format(" --duration-ms {}", a.soak.duration_ms)
                         : std::string(),
                     a.duplicate_requests ? " --duplicate-requests" : "",
                     a.diverge > 0 ? fmt::format(" --diverge {}", a.diverge) : std::string());
}

nodenomad::soak::SoakSeeds soak_seeds(const Args& a) {
  nodenomad::soak::SoakSeeds seeds;
  seeds.run = [&a](std::uint64_t seed) {
    return nodenomad::soak::outcome_of(
        nodenomad::testing::run_cluster_simulation(options_for(a, seed)));
  };
  seeds.replay_command = [&a](std::uint64_t seed) { return replay_command(a, seed); };
  seeds.on_end = [](std::uint64_t seed, const nodenomad::soak::SeedOutcome& o) {
    fmt::print("{{\"seed\":{},\"passed\":{},\"steps\":{},\"simulated_ms\":{}}}\n", seed,
               o.passed, o.steps, o.simulated_ms);
  };
  seeds.print_replay_line = true;
  seeds.count_ops = true;
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  // Injected I/O errors, crashes and refused calls are routine here: the
  // library's own log shows only in a traced replay (interleaved with the
  // trace, in order).
  if (a.soak.trace) {
    nodenomad::set_log_sink([](nodenomad::LogLevel, std::string_view component,
                               std::string_view message) {
      fmt::print("  log {}: {}\n", component, message);
    });
  } else {
    nodenomad::set_log_sink([](nodenomad::LogLevel, std::string_view, std::string_view) {});
  }
  if (a.soak.replay_seed) {
    return nodenomad::soak::replay_seed(options_for(a, *a.soak.replay_seed), a.soak.trace,
                                        nodenomad::testing::run_cluster_simulation);
  }
  if (a.soak.quick) a.soak.duration_ms = kQuickDurationMs;
  return nodenomad::soak::run_soak(kProgram, a.soak, soak_seeds(a));
}
