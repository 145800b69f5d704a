// nodenomadctl: the command-line client of a NodeNomad cluster (docs/cli.md).
//
// The logic lives in src/server/ctl_* (parsing, requests, output, exit
// codes) and, for the migration commands, in migrate_*.cpp beside this file,
// where it is unit-tested; this file only reads stdin, does the HTTP
// exchanges and writes to the terminal.
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "http_client.hpp"
#include "load_cli.hpp"
#include "migrate_cli.hpp"
#include "server/ctl_cli.hpp"

namespace {

using namespace nodenomad;

// `put KEY -` reads the value from stdin; the server refuses anything over
// its MAX_VALUE_SIZE (64MB at most) anyway, so reading stops a little above.
constexpr std::size_t kMaxStdinValueBytes = (64u << 20) + 1;
constexpr std::size_t kDefaultTerminalColumns = 80;
// A loader waiting for its next write looks at the stop flag this often.
constexpr std::uint64_t kLoadWakeUpUs = 50'000;

// Set by SIGINT or SIGTERM while `load` runs (lock-free, so a handler may set it).
std::atomic<bool> g_stop_load{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void stop_load(int) { g_stop_load.store(true); }

Result<std::string> read_stdin() {
  std::string value;
  char chunk[64 * 1024];
  while (value.size() < kMaxStdinValueBytes) {
    const std::size_t n = std::fread(chunk, 1, sizeof chunk, stdin);
    value.append(chunk, n);
    if (n < sizeof chunk) break;
  }
  if (std::ferror(stdin)) return Status::io_error("cannot read the value from stdin");
  if (value.size() >= kMaxStdinValueBytes) {
    return Status::invalid_argument("the value on stdin is larger than 64MB");
  }
  return value;
}

int emit(const ctl::CtlOutput& output) {
  std::fwrite(output.out.data(), 1, output.out.size(), stdout);
  std::fwrite(output.err.data(), 1, output.err.size(), stderr);
  // A full disk or closed pipe on stdout must not pass for success.
  if (std::fflush(stdout) != 0 && output.exit_code == ctl::kExitOk) return ctl::kExitOther;
  return output.exit_code;
}

bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--json") return true;
  }
  return false;
}

// A terminal that understands cursor movement: stdout is a TTY and TERM is
// not "dumb" (Emacs shells, some CI logs).
bool stdout_is_terminal() {
  if (::isatty(STDOUT_FILENO) != 1) return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::string_view(term) != "dumb";
}

// The terminal's columns and rows; 80 and unknown (0) when it does not say.
std::pair<std::size_t, std::size_t> terminal_size() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) {
    return {kDefaultTerminalColumns, 0};
  }
  return {size.ws_col, size.ws_row};
}

std::uint64_t monotonic_us() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// `load`: one thread and one keep-alive connection per --connections, on
// the schedule of run_load_worker(); Ctrl-C or SIGTERM ends it (the writes
// in flight are answered first, within --timeout-ms), then the summary.
int run_load_command(const ctl::MigrateInvocation& invocation) {
  struct sigaction action {};
  action.sa_handler = stop_load;
  ::sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  const ctl::LoadOptions& options = invocation.load;
  const HostPort endpoint = invocation.globals.endpoint;
  std::fputs(fmt::format("nodenomadctl: load: {} writes/s to {} over {} connection{}, {}\n",
                         options.rate_per_s, endpoint.to_string(), options.connections,
                         options.connections == 1 ? "" : "s",
                         options.duration_ms == 0
                             ? std::string("until Ctrl-C")
                             : "for " + ctl::format_elapsed_ms(options.duration_ms))
                 .c_str(),
             stderr);
  const std::uint64_t start_us = monotonic_us();
  std::vector<ctl::LoadTally> tallies(options.connections);
  std::vector<std::thread> workers;
  for (std::uint64_t i = 0; i < options.connections; ++i) {
    workers.emplace_back([&, i] {
      ctl::HttpSession session(endpoint, invocation.globals.timeout_ms);
      ctl::LoadIo io;
      io.exchange = [&session](const ctl::HttpRequestSpec& spec) { return session.request(spec); };
      io.now_us = monotonic_us;
      io.sleep_until_us = [](std::uint64_t until_us) {
        const std::uint64_t now = monotonic_us();
        if (until_us <= now || g_stop_load.load()) return;
        std::this_thread::sleep_for(
            std::chrono::microseconds(std::min(until_us - now, kLoadWakeUpUs)));
      };
      io.stop = &g_stop_load;
      tallies[i] = ctl::run_load_worker(options, i, start_us, io);
    });
  }
  for (std::thread& worker : workers) worker.join();
  ctl::LoadTally total;
  for (const ctl::LoadTally& tally : tallies) total.merge(tally);
  const std::uint64_t elapsed_ms = (monotonic_us() - start_us) / 1000;
  const std::string summary = ctl::render_load_summary(options, endpoint.to_string(), total,
                                                       elapsed_ms, invocation.globals.json);
  std::fwrite(summary.data(), 1, summary.size(), stdout);
  if (std::fflush(stdout) != 0) return ctl::kExitOther;
  return ctl::load_exit_code(total);
}

// The migration commands: several exchanges, a live display, real time.
int run_migration_command(int argc, char** argv) {
  auto invocation = ctl::parse_migrate_args(argc, argv, process_env());
  if (!invocation.is_ok()) {
    return emit(ctl::render_usage_error(wants_json(argc, argv), invocation.status().message()));
  }
  if (invocation->command == ctl::MigrateCommand::kHelp) {
    std::fputs(ctl::full_help().c_str(), stdout);
    return ctl::kExitOk;
  }
  if (invocation->command == ctl::MigrateCommand::kLoad) return run_load_command(*invocation);
  bool stdout_failed = false;
  ctl::CtlIo io;
  const HostPort endpoint = invocation->globals.endpoint;
  const std::uint64_t timeout_ms = invocation->globals.timeout_ms;
  io.exchange = [endpoint, timeout_ms](const ctl::HttpRequestSpec& request) {
    return ctl::http_request(endpoint, request, timeout_ms);
  };
  io.sleep_ms = [](std::uint64_t ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  };
  io.now_ms = [] {
    const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count());
  };
  io.out = [&stdout_failed](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    // Flushed at once: the progress display is redrawn in place.
    if (std::fflush(stdout) != 0) stdout_failed = true;
  };
  io.err = [](std::string_view text) { std::fwrite(text.data(), 1, text.size(), stderr); };
  io.terminal = stdout_is_terminal();
  if (io.terminal) std::tie(io.width, io.height) = terminal_size();
  const int exit_code = ctl::run_migrate_command(*invocation, io);
  return stdout_failed && exit_code == ctl::kExitOk ? ctl::kExitOther : exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  if (ctl::is_migrate_command(argc, argv)) return run_migration_command(argc, argv);
  auto invocation = ctl::parse_ctl_args(argc, argv, process_env());
  if (!invocation.is_ok()) {
    return emit(ctl::render_usage_error(wants_json(argc, argv), invocation.status().message()));
  }
  if (invocation->command == ctl::Command::kHelp) {
    std::fputs(ctl::full_help().c_str(), stdout);
    return ctl::kExitOk;
  }
  if (invocation->value_from_stdin) {
    auto value = read_stdin();
    if (!value.is_ok())
      return emit(ctl::render_usage_error(invocation->json, value.status().message()));
    invocation->value = std::move(*value);
  }
  const ctl::HttpRequestSpec request = ctl::build_request(*invocation);
  const ctl::HttpResult result =
      ctl::http_request(invocation->endpoint, request, invocation->timeout_ms);
  if (result.reply) return emit(ctl::render_reply(*invocation, *result.reply));
  return emit(ctl::render_transport_failure(*invocation, result.failure, result.detail));
}
