// The loop both simulators' soaks run (benchmarks/sim_soak.cpp for the Raft
// group, benchmarks/cluster_sim_soak.cpp for whole Nodes): their common
// flags, seeds run one after another until time runs out, a JSON line for
// every failure and one summary line.
//
// Each seed runs in a child process (unless --no-fork), so an NN_ASSERT
// abort inside the code under test is reported as that seed's failure and
// the soak goes on. The real clock is read here, and only here, to decide
// when to stop; the simulations never see it.
//
// Not a library part: the two soaks compile soak_driver.cpp themselves, so
// no simulator library holds a fork() or a real clock.
//
// Thread safety: none. Call from main(), on the only thread.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "nodenomad/testing/linearizability.hpp"

namespace nodenomad::soak {

// What an error message names: "<name>: <why>\nusage: <usage>".
struct SoakProgram {
  std::string_view name;
  std::string_view usage;
};

// Prints the error and the usage line to stderr and exits with status 2.
[[noreturn]] void usage_error(const SoakProgram& program, std::string_view why);

// The flags every soak takes.
struct SoakFlags {
  double seconds = 60;                       // --seconds N: real time to run for
  std::uint64_t first_seed = 1;              // --first-seed S
  std::uint64_t duration_ms = 0;             // --duration-ms D; the soak sets its default
  bool quick = false;                        // --quick: kQuickSeeds seeds, then stop
  std::optional<std::uint64_t> replay_seed;  // --seed S: run this seed alone
  bool trace = false;                        // --trace: print every event of the replay
  bool verbose = false;                      // --verbose: a line for every seed
  bool fork_per_seed = true;                 // --no-fork: run seeds in this process
};

inline constexpr std::uint64_t kQuickSeeds = 2;

// Walks argv flag by flag; a flag's value is the word after it. Every
// mistake ends the process through usage_error().
class SoakCommandLine {
 public:
  SoakCommandLine(const SoakProgram& program, int argc, char** argv);

  // Moves to the next flag; false after the last one.
  bool next();
  std::string_view flag() const { return argv_[index_]; }
  // The current flag's value as a number (decimal, 0x hex or 0 octal).
  // Exits with "a flag needs a value" or "not a number".
  std::uint64_t number();
  // The current flag's value as a probability; exits with "a flag needs a
  // value" or "not a probability (a number from 0 to 1)".
  double probability();
  // The current flag's value as a word; exits with `why` if there is none.
  std::string_view word(std::string_view why);
  // Takes the current flag (and its value) if it is one of SoakFlags'.
  bool take_common(SoakFlags& flags);
  [[noreturn]] void fail(std::string_view why) const { usage_error(program_, why); }

 private:
  const SoakProgram& program_;
  int argc_;
  char** argv_;
  int index_ = 0;
};

// One seed's run as the soak counts it.
struct SeedOutcome {
  bool passed = false;
  bool unknown_verdict = false;
  std::uint64_t steps = 0;
  std::uint64_t simulated_ms = 0;
  std::uint64_t ops = 0;     // client operations, whatever their outcome
  std::string failure_json;  // the result's JSON line, if it failed
};

// Result: SimResult or ClusterSimResult.
template <typename Result>
SeedOutcome outcome_of(const Result& r) {
  SeedOutcome o;
  o.passed = r.passed;
  o.unknown_verdict = r.verdict == testing::Verdict::kUnknown;
  o.steps = r.stats.steps;
  o.simulated_ms = r.stats.simulated_ms;
  o.ops = r.stats.ops_ok + r.stats.ops_fail + r.stats.ops_unknown;
  if (!r.passed) o.failure_json = r.to_json();
  return o;
}

// What one soak plugs into the loop. Only `run` and `replay_command` are
// required.
struct SoakSeeds {
  // Runs one seed in this process.
  std::function<SeedOutcome(std::uint64_t seed)> run;
  // The command that replays a seed; a seed whose process died says it.
  std::function<std::string(std::uint64_t seed)> replay_command;
  // More JSON fields for a seed whose process died, after "seed" (",\"nodes\":3").
  std::function<std::string(std::uint64_t seed)> died_fields;
  // With --verbose: called before a seed runs, and after it ran.
  std::function<void(std::uint64_t seed)> on_start;
  std::function<void(std::uint64_t seed, const SeedOutcome& outcome)> on_end;
  // After each failure's JSON line, a line {"replay":"<replay_command>"}.
  bool print_replay_line = false;
  // The summary counts client operations ("ops").
  bool count_ops = false;
};

// Runs seeds first_seed, first_seed + 1, ... until `flags.seconds` of real
// time have passed (with --quick: kQuickSeeds seeds), printing each
// failure's JSON line and then the summary line. Returns the exit code: 0
// if every seed passed, else 1.
int run_soak(const SoakProgram& program, const SoakFlags& flags, const SoakSeeds& seeds);

// --seed S: runs `options` in this process (printing every event with
// --trace), then prints the report and the JSON line. Returns the exit code.
template <typename Options, typename Run>
int replay_seed(Options options, bool trace, Run&& run_simulation) {
  if (trace) options.on_event = [](std::string_view line) { fmt::print("{}\n", line); };
  const auto result = run_simulation(options);
  fmt::print("{}{}\n", result.report(), result.to_json());
  return result.passed ? 0 : 1;
}

}  // namespace nodenomad::soak
