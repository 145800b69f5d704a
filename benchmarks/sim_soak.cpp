// sim_soak: runs whole-cluster simulations seed after seed until time runs
// out, and reports every failure as a JSON line.
//
//   sim_soak --seconds 600 [--first-seed S] [--nodes 3|5] [--duration-ms D]
//   sim_soak --quick                 CI smoke run: a couple of short seeds
//   sim_soak --seed S [--trace]      replay one seed (and print every event)
//   --verbose                        a line for every seed as it starts
//   --bug ack|local                  run with a deliberate runtime bug (acks
//                                    before fsync, or reads skipping
//                                    read_index): failures are expected
//
// Without --nodes, odd seeds run 3 nodes and even seeds 5. Each seed runs in
// a child process, so an NN_ASSERT abort inside the code under test is
// reported as that seed's failure and the soak goes on. The real clock is
// read only here, to decide when to stop; the simulations never see it.
// Output: one JSON line per failure, then one summary line. The exit code is
// non-zero if any seed failed.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "nodenomad/logging.hpp"
#include "nodenomad/testing/simulator.hpp"

namespace {

using nodenomad::testing::SimOptions;
using nodenomad::testing::SimResult;

struct Args {
  double seconds = 60;
  std::uint64_t first_seed = 1;
  std::uint32_t nodes = 0;  // 0: 3 for odd seeds, 5 for even ones
  std::uint64_t duration_ms = 20'000;
  bool quick = false;
  std::optional<std::uint64_t> replay;
  bool trace = false;
  bool verbose = false;  // a line per seed, passed or not
  bool fork_per_seed = true;
  nodenomad::testing::SimRuntimeBug bug = nodenomad::testing::SimRuntimeBug::kNone;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "sim_soak: %s\nusage: sim_soak --seconds N [--first-seed S] [--nodes 3|5] "
               "[--duration-ms D] | --quick | --seed S [--trace]\n",
               why);
  std::exit(2);
}

std::uint64_t number(int argc, char** argv, int& i) {
  if (i + 1 >= argc) usage("a flag needs a value");
  char* end = nullptr;
  const std::uint64_t v = std::strtoull(argv[++i], &end, 0);
  if (end == argv[i] || *end != '\0') usage("not a number");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--seconds") {
      a.seconds = static_cast<double>(number(argc, argv, i));
    } else if (flag == "--first-seed") {
      a.first_seed = number(argc, argv, i);
    } else if (flag == "--nodes") {
      a.nodes = static_cast<std::uint32_t>(number(argc, argv, i));
      if (a.nodes < 1 || a.nodes > 7) usage("--nodes must be 1 to 7");
    } else if (flag == "--duration-ms") {
      a.duration_ms = number(argc, argv, i);
    } else if (flag == "--quick") {
      a.quick = true;
    } else if (flag == "--seed") {
      a.replay = number(argc, argv, i);
    } else if (flag == "--verbose") {
      a.verbose = true;
    } else if (flag == "--trace") {
      a.trace = true;
    } else if (flag == "--bug") {
      if (i + 1 >= argc) usage("--bug needs ack or local");
      const std::string_view which = argv[++i];
      if (which == "ack") {
        a.bug = nodenomad::testing::SimRuntimeBug::kAckBeforePersist;
      } else if (which == "local") {
        a.bug = nodenomad::testing::SimRuntimeBug::kLocalReads;
      } else {
        usage("--bug needs ack or local");
      }
    } else if (flag == "--no-fork") {
      a.fork_per_seed = false;
    } else {
      usage("unknown flag");
    }
  }
  return a;
}

SimOptions options_for(const Args& a, std::uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.node_count = a.nodes != 0 ? a.nodes : (seed % 2 == 1 ? 3 : 5);
  o.duration_ms = a.duration_ms;
  o.runtime_bug = a.bug;
  return o;
}

struct Outcome {
  bool passed = false;
  bool unknown_verdict = false;
  std::uint64_t steps = 0;
  std::uint64_t simulated_ms = 0;
  std::string json;  // the failure line
};

Outcome outcome_of(const SimResult& r) {
  Outcome o;
  o.passed = r.passed;
  o.unknown_verdict = r.verdict == nodenomad::testing::Verdict::kUnknown;
  o.steps = r.stats.steps;
  o.simulated_ms = r.stats.simulated_ms;
  if (!r.passed) o.json = r.to_json();
  return o;
}

// Runs one seed in a child process. The child writes one line:
// "<passed> <unknown> <steps> <simulated_ms> <json>".
Outcome run_forked(const SimOptions& options) {
  int fds[2];
  if (pipe(fds) != 0) usage("pipe() failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) usage("fork() failed");
  if (pid == 0) {
    close(fds[0]);
    const Outcome o = outcome_of(nodenomad::testing::run_simulation(options));
    const std::string line = fmt::format("{} {} {} {} {}", o.passed ? 1 : 0,
                                         o.unknown_verdict ? 1 : 0, o.steps, o.simulated_ms, o.json);
    std::size_t written = 0;
    while (written < line.size()) {
      const ssize_t n = write(fds[1], line.data() + written, line.size() - written);
      if (n <= 0) _exit(3);
      written += static_cast<std::size_t>(n);
    }
    _exit(o.passed ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Outcome o;
  unsigned passed = 0;
  unsigned unknown = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%u %u %lu %lu %n", &passed, &unknown, &o.steps, &o.simulated_ms,
                  &consumed) >= 4) {
    o.passed = passed == 1;
    o.unknown_verdict = unknown == 1;
    o.json = text.substr(static_cast<std::size_t>(consumed));
  }
  if (WIFSIGNALED(status)) {
    o.passed = false;
    o.json = fmt::format(
        "{{\"seed\":{},\"nodes\":{},\"passed\":false,\"failure\":\"the process died of signal {} "
        "(an NN_ASSERT aborts; replay with sim_soak --seed {} --nodes {} --no-fork --trace)\"}}",
        options.seed, options.node_count, WTERMSIG(status), options.seed, options.node_count);
  }
  return o;
}

int replay(const Args& a) {
  SimOptions options = options_for(a, *a.replay);
  if (a.trace) options.on_event = [](std::string_view line) { fmt::print("{}\n", line); };
  const SimResult r = nodenomad::testing::run_simulation(options);
  fmt::print("{}{}\n", r.report(), r.to_json());
  return r.passed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  // Injected I/O errors and torn tails are routine here: keep the library's
  // own log quiet unless a replay asks to see everything.
  if (!a.trace) nodenomad::set_log_sink([](nodenomad::LogLevel, std::string_view, std::string_view) {});
  if (a.replay) return replay(a);
  if (a.quick) {
    a.seconds = 1e9;  // bounded by the seed count instead
    a.duration_ms = 3'000;
  }
  const std::uint64_t max_seeds = a.quick ? 2 : UINT64_MAX;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::uint64_t seeds = 0, failures = 0, unknown = 0, steps = 0, simulated_ms = 0;
  std::uint64_t seed = a.first_seed;
  while (seeds < max_seeds && elapsed() < a.seconds) {
    const SimOptions options = options_for(a, seed);
    if (a.verbose) {
      fmt::print("{{\"running\":{},\"nodes\":{}}}\n", options.seed, options.node_count);
      std::fflush(stdout);
    }
    const Outcome o = a.fork_per_seed ? run_forked(options)
                                      : outcome_of(nodenomad::testing::run_simulation(options));
    ++seeds;
    ++seed;
    steps += o.steps;
    simulated_ms += o.simulated_ms;
    if (o.unknown_verdict) ++unknown;
    if (!o.passed) {
      ++failures;
      fmt::print("{}\n", o.json);
      std::fflush(stdout);
    }
  }
  fmt::print(
      "{{\"summary\":true,\"first_seed\":{},\"seeds\":{},\"failures\":{},\"unknown_verdicts\":{},"
      "\"steps\":{},\"simulated_seconds\":{},\"wall_seconds\":{:.1f}}}\n",
      a.first_seed, seeds, failures, unknown, steps, simulated_ms / 1000, elapsed());
  return failures == 0 ? 0 : 1;
}
