// nodenomadctl's migration commands (docs/cli.md, "Migrations"): migrate,
// rebalance, drain, migrations, migration, cancel, pause, resume, bandwidth,
// and status --watch. The other commands are src/server/ctl_*; main() sends
// argv here when is_migrate_command() says so.
//
// Everything here is a pure function or runs on an injected CtlIo (the HTTP
// exchange, the clock, sleeping and the terminal), so the tests need no
// socket, no terminal and no real time. Boost.JSON is used in
// migrate_view.cpp only; Beast stays in http_client.cpp.
//
// Exit codes are ctl_cli.hpp's, plus: migrate, rebalance and drain exit 0
// when every operation ended `done` and kExitOther (7) when one failed or was
// cancelled; a 409 (the placement changed under the request, nothing
// started) exits kExitVersionMismatch (3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.hpp"
#include "load_cli.hpp"
#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {

enum class MigrateCommand {
  kHelp,
  kMigrate,      // migrate --shards 3,7 --from node-1 --to node-4 [--bandwidth 50MB]
  kRebalance,    // rebalance
  kDrain,        // drain NODE
  kList,         // migrations
  kShow,         // migration OP
  kCancel,       // cancel OP
  kPause,        // pause OP
  kResume,       // resume OP
  kBandwidth,    // bandwidth OP SIZE
  kStatusWatch,  // status --watch [--interval 1s]
  kWatchList,    // migrations --watch [--interval 1s]
  kLoad,         // load [--rate 200] [--duration 60s] [--keys 1000] ... (load_cli.hpp)
};

inline constexpr std::uint64_t kDefaultIntervalMs = 1000;

struct MigrateInvocation {
  MigrateCommand command = MigrateCommand::kHelp;
  // --endpoint, --timeout-ms, --json, -v: parsed by parse_ctl_args itself, so
  // they behave exactly as for every other command.
  Invocation globals;
  std::vector<std::uint32_t> shards;        // migrate --shards
  std::string source;                       // migrate --from
  std::string target;                       // migrate --to
  std::uint64_t bandwidth_bytes_per_s = 0;  // migrate --bandwidth; bandwidth OP SIZE
  std::string operation;                    // migration, cancel, pause, resume, bandwidth
  std::string node;                         // drain
  bool wait = true;                         // migrate, rebalance, drain: false with --no-wait
  std::uint64_t interval_ms = kDefaultIntervalMs;  // --interval: polling and redrawing
  LoadOptions load;                                // load
};

// True when argv's command is one of the above (`status` only with --watch
// or --interval); the other command lines go to parse_ctl_args. `load` is
// parsed here too but run by main.cpp (it needs threads and signals).
bool is_migrate_command(int argc, const char* const* argv);

// kInvalidArgument with a one-line message on any usage error (exit 2).
Result<MigrateInvocation> parse_migrate_args(int argc, const char* const* argv,
                                             const EnvLookup& env);

// ctl_help() with the migration commands and their exit codes added.
std::string full_help();

// The request of a one-shot command, or the one that starts migrate,
// rebalance or drain. Precondition: command is not kHelp, kStatusWatch,
// kWatchList or kLoad.
HttpRequestSpec build_migrate_request(const MigrateInvocation& invocation);

// ---- formatting (migrate_format.cpp) ----

// "900B", "64.0KB", "1.5GB" (binary multiples, as `status` shows sizes).
std::string format_bytes(std::uint64_t bytes);
// "12.0MB/s"; "-" for 0 or less (nothing measured).
std::string format_rate(double bytes_per_s);
// "42s", "3m05s", "1h02m", ">99h"; "-" when unknown.
std::string format_eta(std::optional<double> seconds);
// "850ms", "42.0s", "3m05s", "1h02m".
std::string format_elapsed_ms(std::uint64_t ms);
// "42.5%", "100%".
std::string format_percent(double percent);
// "10:00:01" (UTC) of a Unix time in milliseconds.
std::string format_clock_utc(std::uint64_t unix_ms);
// A bandwidth as docs/configuration.md writes sizes, per second: "50MB",
// "50MB/s", "1048576" (binary units: 1MB = 2^20 bytes). At least 1 byte/s.
Result<std::uint64_t> parse_bandwidth(std::string_view text);
// "3,7", "0-3,9": shard ids below 2^32, each at most once, at most 4096.
Result<std::vector<std::uint32_t>> parse_shard_list(std::string_view text);
// `text` cut to `width` columns (bytes; the text is ASCII once sanitized).
std::string fit_width(std::string text, std::size_t width);

// ---- operations as the server describes them (migrate_view.cpp) ----

// One operation of GET /v1/migrations[/{id}]; missing fields stay empty / 0.
struct OpView {
  std::string id;
  std::string batch_id;
  std::uint64_t shard = 0;
  std::string source;
  std::string target;
  std::string stage;  // "prepare" ... "cancelled"; as sent (sanitized)
  std::uint64_t bytes_total = 0;
  std::uint64_t bytes_done = 0;
  std::uint64_t keys_total = 0;
  std::uint64_t keys_done = 0;
  double percent = 0;
  double rate_bytes_per_s = 0;
  std::optional<double> eta_s;
  std::string started_at;   // empty: null
  std::string finished_at;  // empty: null (running)
  std::string error;        // empty: none
  bool queued = false;
  bool paused = false;
  bool cancel_requested = false;
  std::uint64_t bandwidth_bytes_per_s = 0;
  std::vector<std::pair<std::string, std::uint64_t>> stage_ms;  // in the server's order
  std::uint64_t verify_mismatches = 0;
  std::uint64_t bytes_freed = 0;
  std::string json;  // the object re-serialized, for --json output

  bool ended() const { return stage == "done" || stage == "failed" || stage == "cancelled"; }
};

struct BatchView {
  std::string id;
  std::vector<std::string> operations;
  std::string json;
};

// kInvalidArgument when the body is not the JSON the API promises.
Result<OpView> parse_op(std::string_view body);
Result<std::vector<OpView>> parse_op_list(std::string_view body);  // {"migrations": [...]}
Result<BatchView> parse_batch(std::string_view body);              // {"id", "operations"}

// "op-9  shard 3  node-1 -> node-4  transfer  42.5%  1.5KB/s  ETA 1s  paused"
std::string progress_line(const OpView& op);
// The table of `migrations`; "no migrations\n" when empty.
std::string migrations_table(const std::vector<OpView>& ops);
// The lines of `migration OP`.
std::string migration_details(const OpView& op);

// What a one-shot command prints and exits with for an answer (also
// migrate/rebalance/drain with --no-wait, and every error answer).
CtlOutput render_migrate_reply(const MigrateInvocation& invocation, const HttpReply& reply);
CtlOutput render_migrate_failure(const MigrateInvocation& invocation, TransportFailure failure,
                                 std::string_view detail);

// ---- following and watching (migrate_follow.cpp) ----

// Draws the progress of operations: on a terminal, one line per operation
// redrawn in place (ANSI cursor-up and erase-line), cut to `width` columns;
// when there are more operations than `height` rows leave room for, the
// running ones first and one summary line for the rest. Otherwise plain
// lines, one when an operation changes stage, pause or queue state, crosses
// another 10%, or moved and was last shown kPlainRepeatMs ago.
class ProgressDisplay {
 public:
  static constexpr std::uint64_t kPlainRepeatMs = 5000;

  // width, height: the terminal's columns and rows; 0 when unknown.
  ProgressDisplay(bool terminal, std::size_t width, std::size_t height = 0)
      : terminal_(terminal), width_(width), height_(height) {}

  // The text to write for this poll's statuses (plain mode: maybe nothing).
  std::string update(const std::vector<OpView>& ops, std::uint64_t now_ms);

 private:
  struct Shown {
    std::string stage;
    bool paused = false;
    bool queued = false;
    bool cancel_requested = false;
    int decile = 0;
    std::uint64_t bytes_done = 0;
    std::uint64_t at_ms = 0;
  };
  bool worth_a_line(const OpView& op, std::uint64_t now_ms) const;
  std::vector<std::string> terminal_lines(const std::vector<OpView>& ops) const;

  bool terminal_;
  std::size_t width_;
  std::size_t height_;
  std::size_t lines_drawn_ = 0;
  std::map<std::string, Shown> shown_;
};

// The program's side effects, injected.
struct CtlIo {
  std::function<HttpResult(const HttpRequestSpec&)> exchange;
  std::function<void(std::uint64_t ms)> sleep_ms;
  std::function<std::uint64_t()> now_ms;  // Unix time in milliseconds
  std::function<void(std::string_view)> out;
  std::function<void(std::string_view)> err;
  bool terminal = false;   // stdout is a terminal
  std::size_t width = 80;  // its columns
  std::size_t height = 0;  // its rows; 0: unknown
};

// Polls that may fail in a row (no answer, 503, 504) while following before
// giving up; the operations go on in the cluster either way.
inline constexpr int kMaxFailedPolls = 30;

// Runs one migration command to its end and returns the exit code. For
// migrate, rebalance and drain without --no-wait it follows the operations
// started until each ends; status --watch redraws until interrupted, or for
// `max_frames` frames when that is not 0 (tests). migrations --watch follows
// every batch with an operation running when it starts (the whole batch), and
// every operation that starts while it watches, until all of them ended
// (waiting for one to start when none runs; `max_frames` bounds the polls in
// tests). Precondition: command is not kLoad.
int run_migrate_command(const MigrateInvocation& invocation, CtlIo& io,
                        std::uint64_t max_frames = 0);

}  // namespace nodenomad::ctl
