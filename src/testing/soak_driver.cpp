#include "testing/soak_driver.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "nodenomad/assert.hpp"

namespace nodenomad::soak {
namespace {

// The child's one line to its parent:
//   "<passed 0|1> <unknown 0|1> <steps> <simulated_ms> <ops> <failure json>"
std::string encode(const SeedOutcome& o) {
  return fmt::format("{} {} {} {} {} {}", o.passed ? 1 : 0, o.unknown_verdict ? 1 : 0, o.steps,
                     o.simulated_ms, o.ops, o.failure_json);
}

SeedOutcome decode(const std::string& text) {
  SeedOutcome o;
  unsigned passed = 0;
  unsigned unknown = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%u %u %" SCNu64 " %" SCNu64 " %" SCNu64 " %n", &passed, &unknown,
                  &o.steps, &o.simulated_ms, &o.ops, &consumed) >= 5) {
    o.passed = passed == 1;
    o.unknown_verdict = unknown == 1;
    o.failure_json = text.substr(static_cast<std::size_t>(consumed));
  }
  return o;
}

[[noreturn]] void child_writes(int fd, const SeedOutcome& outcome) {
  const std::string line = encode(outcome);
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = write(fd, line.data() + written, line.size() - written);
    if (n <= 0) _exit(3);
    written += static_cast<std::size_t>(n);
  }
  _exit(outcome.passed ? 0 : 1);
}

// Runs one seed in a child process; a child that dies of a signal makes a
// failure whose line names the signal and the replay command.
SeedOutcome run_forked(const SoakProgram& program, const SoakSeeds& seeds, std::uint64_t seed) {
  int fds[2];
  if (pipe(fds) != 0) usage_error(program, "pipe() failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) usage_error(program, "fork() failed");
  if (pid == 0) {
    close(fds[0]);
    child_writes(fds[1], seeds.run(seed));
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  SeedOutcome o = decode(text);
  if (WIFSIGNALED(status)) {
    o.passed = false;
    o.failure_json = fmt::format(
        "{{\"seed\":{}{},\"passed\":false,\"failure\":\"the process died of signal {} (an "
        "NN_ASSERT aborts; replay with {})\"}}",
        seed, seeds.died_fields ? seeds.died_fields(seed) : std::string(), WTERMSIG(status),
        seeds.replay_command(seed));
  }
  return o;
}

}  // namespace

void usage_error(const SoakProgram& program, std::string_view why) {
  fmt::print(stderr, "{}: {}\nusage: {}\n", program.name, why, program.usage);
  std::exit(2);
}

SoakCommandLine::SoakCommandLine(const SoakProgram& program, int argc, char** argv)
    : program_(program), argc_(argc), argv_(argv) {}

bool SoakCommandLine::next() { return ++index_ < argc_; }

std::uint64_t SoakCommandLine::number() {
  if (index_ + 1 >= argc_) fail("a flag needs a value");
  const char* text = argv_[++index_];
  char* end = nullptr;
  const std::uint64_t value = std::strtoull(text, &end, 0);
  if (end == text || *end != '\0') fail("not a number");
  return value;
}

double SoakCommandLine::probability() {
  if (index_ + 1 >= argc_) fail("a flag needs a value");
  const char* text = argv_[++index_];
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= 0 && value <= 1)) {
    fail("not a probability (a number from 0 to 1)");
  }
  return value;
}

std::string_view SoakCommandLine::word(std::string_view why) {
  if (index_ + 1 >= argc_) fail(why);
  return argv_[++index_];
}

bool SoakCommandLine::take_common(SoakFlags& flags) {
  const std::string_view f = flag();
  if (f == "--seconds") {
    flags.seconds = static_cast<double>(number());
  } else if (f == "--first-seed") {
    flags.first_seed = number();
  } else if (f == "--duration-ms") {
    flags.duration_ms = number();
  } else if (f == "--quick") {
    flags.quick = true;
  } else if (f == "--seed") {
    flags.replay_seed = number();
  } else if (f == "--trace") {
    flags.trace = true;
  } else if (f == "--verbose") {
    flags.verbose = true;
  } else if (f == "--no-fork") {
    flags.fork_per_seed = false;
  } else {
    return false;
  }
  return true;
}

int run_soak(const SoakProgram& program, const SoakFlags& flags, const SoakSeeds& seeds) {
  NN_ASSERT(seeds.run && seeds.replay_command, "a soak needs run and replay_command");
  const std::uint64_t max_seeds = flags.quick ? kQuickSeeds : UINT64_MAX;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::uint64_t count = 0, failures = 0, unknown = 0, steps = 0, simulated_ms = 0, ops = 0;
  for (std::uint64_t seed = flags.first_seed;
       count < max_seeds && (flags.quick || elapsed() < flags.seconds); ++seed) {
    if (flags.verbose && seeds.on_start) seeds.on_start(seed);
    std::fflush(stdout);
    const SeedOutcome o = flags.fork_per_seed ? run_forked(program, seeds, seed) : seeds.run(seed);
    ++count;
    steps += o.steps;
    simulated_ms += o.simulated_ms;
    ops += o.ops;
    if (o.unknown_verdict) ++unknown;
    if (flags.verbose && seeds.on_end) seeds.on_end(seed, o);
    if (!o.passed) {
      ++failures;
      fmt::print("{}\n", o.failure_json);
      if (seeds.print_replay_line) {
        fmt::print("{{\"replay\":\"{}\"}}\n", seeds.replay_command(seed));
      }
    }
    std::fflush(stdout);
  }
  fmt::print(
      "{{\"summary\":true,\"first_seed\":{},\"seeds\":{},\"failures\":{},\"unknown_verdicts\":{},"
      "\"steps\":{},\"simulated_seconds\":{},{}\"wall_seconds\":{:.1f}}}\n",
      flags.first_seed, count, failures, unknown, steps, simulated_ms / 1000,
      seeds.count_ops ? fmt::format("\"ops\":{},", ops) : std::string(), elapsed());
  return failures == 0 ? 0 : 1;
}

}  // namespace nodenomad::soak
