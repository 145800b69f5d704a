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
//   --trace-group G                       with --trace: every Raft message of
//                                         group G too (0 = metadata, s+1 = shard s)
//   --verbose                             a line for every seed as it ends
//
// Each seed runs in a child process, so an NN_ASSERT abort inside the code
// under test is reported as that seed's failure and the soak goes on. The
// real clock is read only here, to decide when to stop; the simulations
// never see it. Output: one JSON line per failure, then a summary line. The
// exit code is non-zero if any seed failed.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "nodenomad/logging.hpp"
#include "nodenomad/testing/cluster_simulator.hpp"

namespace {

using nodenomad::testing::ClusterSimOptions;
using nodenomad::testing::ClusterSimResult;

struct Args {
  double seconds = 60;
  std::uint64_t first_seed = 1;
  std::uint64_t duration_ms = 15'000;
  bool quick = false;
  std::optional<std::uint64_t> replay;
  bool trace = false;
  bool verbose = false;
  bool fork_per_seed = true;
  bool duplicate_requests = false;
  std::optional<std::uint64_t> trace_group;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "cluster_sim_soak: %s\nusage: cluster_sim_soak --seconds N [--first-seed S] "
               "[--duration-ms D] [--duplicate-requests] | --quick | --seed S [--trace]\n",
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
    } else if (flag == "--duration-ms") {
      a.duration_ms = number(argc, argv, i);
    } else if (flag == "--quick") {
      a.quick = true;
    } else if (flag == "--seed") {
      a.replay = number(argc, argv, i);
    } else if (flag == "--trace") {
      a.trace = true;
    } else if (flag == "--verbose") {
      a.verbose = true;
    } else if (flag == "--no-fork") {
      a.fork_per_seed = false;
    } else if (flag == "--duplicate-requests") {
      a.duplicate_requests = true;
    } else if (flag == "--trace-group") {
      a.trace_group = number(argc, argv, i);
    } else {
      usage("unknown flag");
    }
  }
  return a;
}

ClusterSimOptions options_for(const Args& a, std::uint64_t seed) {
  ClusterSimOptions o;
  o.seed = seed;
  o.duration_ms = a.duration_ms;
  o.duplicate_requests = a.duplicate_requests;
  o.trace_raft_group = a.trace_group;
  return o;
}

std::string replay_command(const Args& a, std::uint64_t seed) {
  return fmt::format("cluster_sim_soak --seed {}{}{} --trace", seed,
                     a.duration_ms != 15'000 ? fmt::format(" --duration-ms {}", a.duration_ms)
                                             : std::string(),
                     a.duplicate_requests ? " --duplicate-requests" : "");
}

struct Outcome {
  bool passed = false;
  bool unknown_verdict = false;
  std::uint64_t steps = 0;
  std::uint64_t simulated_ms = 0;
  std::uint64_t ops = 0;
  std::string json;  // the failure line
};

Outcome outcome_of(const ClusterSimResult& r) {
  Outcome o;
  o.passed = r.passed;
  o.unknown_verdict = r.verdict == nodenomad::testing::Verdict::kUnknown;
  o.steps = r.stats.steps;
  o.simulated_ms = r.stats.simulated_ms;
  o.ops = r.stats.ops_ok + r.stats.ops_fail + r.stats.ops_unknown;
  if (!r.passed) o.json = r.to_json();
  return o;
}

// Runs one seed in a child process, which writes one line:
// "<passed> <unknown> <steps> <simulated_ms> <ops> <json>".
Outcome run_forked(const Args& a, const ClusterSimOptions& options) {
  int fds[2];
  if (pipe(fds) != 0) usage("pipe() failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) usage("fork() failed");
  if (pid == 0) {
    close(fds[0]);
    const Outcome o = outcome_of(nodenomad::testing::run_cluster_simulation(options));
    const std::string line = fmt::format("{} {} {} {} {} {}", o.passed ? 1 : 0,
                                         o.unknown_verdict ? 1 : 0, o.steps, o.simulated_ms, o.ops,
                                         o.json);
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
  if (std::sscanf(text.c_str(), "%u %u %lu %lu %lu %n", &passed, &unknown, &o.steps,
                  &o.simulated_ms, &o.ops, &consumed) >= 5) {
    o.passed = passed == 1;
    o.unknown_verdict = unknown == 1;
    o.json = text.substr(static_cast<std::size_t>(consumed));
  }
  if (WIFSIGNALED(status)) {
    o.passed = false;
    o.json = fmt::format(
        "{{\"seed\":{},\"passed\":false,\"failure\":\"the process died of signal {} (an "
        "NN_ASSERT aborts; replay with {})\"}}",
        options.seed, WTERMSIG(status), replay_command(a, options.seed));
  }
  return o;
}

int replay(const Args& a) {
  ClusterSimOptions options = options_for(a, *a.replay);
  if (a.trace) options.on_event = [](std::string_view line) { fmt::print("{}\n", line); };
  const ClusterSimResult r = nodenomad::testing::run_cluster_simulation(options);
  fmt::print("{}{}\n", r.report(), r.to_json());
  return r.passed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  // Injected I/O errors, crashes and refused calls are routine here: the
  // library's own log shows only in a traced replay (interleaved with the
  // trace, in order).
  if (a.trace) {
    nodenomad::set_log_sink([](nodenomad::LogLevel, std::string_view component,
                               std::string_view message) {
      fmt::print("  log {}: {}\n", component, message);
    });
  } else {
    nodenomad::set_log_sink([](nodenomad::LogLevel, std::string_view, std::string_view) {});
  }
  if (a.replay) return replay(a);
  if (a.quick) {
    a.seconds = 1e9;  // bounded by the seed count instead
    a.duration_ms = 5'000;
  }
  const std::uint64_t max_seeds = a.quick ? 2 : UINT64_MAX;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::uint64_t seeds = 0, failures = 0, unknown = 0, steps = 0, simulated_ms = 0, ops = 0;
  std::uint64_t seed = a.first_seed;
  while (seeds < max_seeds && elapsed() < a.seconds) {
    const ClusterSimOptions options = options_for(a, seed);
    const Outcome o = a.fork_per_seed ? run_forked(a, options)
                                      : outcome_of(nodenomad::testing::run_cluster_simulation(options));
    ++seeds;
    steps += o.steps;
    simulated_ms += o.simulated_ms;
    ops += o.ops;
    if (o.unknown_verdict) ++unknown;
    if (a.verbose) {
      fmt::print("{{\"seed\":{},\"passed\":{},\"steps\":{},\"simulated_ms\":{}}}\n", seed,
                 o.passed, o.steps, o.simulated_ms);
    }
    if (!o.passed) {
      ++failures;
      fmt::print("{}\n{{\"replay\":\"{}\"}}\n", o.json, replay_command(a, seed));
    }
    std::fflush(stdout);
    ++seed;
  }
  fmt::print(
      "{{\"summary\":true,\"first_seed\":{},\"seeds\":{},\"failures\":{},\"unknown_verdicts\":{},"
      "\"steps\":{},\"simulated_seconds\":{},\"ops\":{},\"wall_seconds\":{:.1f}}}\n",
      a.first_seed, seeds, failures, unknown, steps, simulated_ms / 1000, ops, elapsed());
  return failures == 0 ? 0 : 1;
}
