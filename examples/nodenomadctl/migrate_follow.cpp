// Running a migration command: the one request of a one-shot command, or
// starting operations and following them to their end with a live progress
// display, or redrawing `status --watch`. All I/O goes through CtlIo.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "migrate_cli.hpp"
#include "server/config_values.hpp"
#include "server/json_text.hpp"

namespace nodenomad::ctl {
namespace {

// ANSI: erase the whole line after going back to its first column; erase
// from the cursor to the end of the screen; clear the screen and home the
// cursor. (Moving up N lines is ESC[NA.)
constexpr std::string_view kEraseLine = "\r\x1b[2K";
constexpr std::string_view kEraseBelow = "\x1b[J";
constexpr std::string_view kClearScreen = "\x1b[H\x1b[2J";
// Rows of a terminal the redrawn lines leave free: the summary line and the
// line the cursor rests on (a frame as tall as the screen would scroll, and
// the cursor could not go back up to its first line).
constexpr std::size_t kFreeRows = 2;

int decile_of(double percent) {
  if (!std::isfinite(percent) || percent < 0) return 0;
  return static_cast<int>(std::min(percent, 100.0) / 10);
}

int emit(CtlIo& io, const CtlOutput& output) {
  if (!output.out.empty()) io.out(output.out);
  if (!output.err.empty()) io.err(output.err);
  return output.exit_code;
}

bool follows(MigrateCommand command) {
  return command == MigrateCommand::kMigrate || command == MigrateCommand::kRebalance ||
         command == MigrateCommand::kDrain;
}

// A poll that did not give every operation's status.
struct PollError {
  CtlOutput output;
  bool retryable = false;  // no answer, 503 or 504: the next poll may work
};

// The invocation that renders a poll's errors: a read (no "may have been
// applied" hint), with the caller's --json and endpoint.
MigrateInvocation reading(const MigrateInvocation& inv, MigrateCommand command) {
  MigrateInvocation read = inv;
  read.command = command;
  return read;
}

std::optional<PollError> failed_exchange(const MigrateInvocation& read, const HttpResult& result) {
  if (!result.reply) {
    return PollError{render_migrate_failure(read, result.failure, result.detail),
                     result.failure != TransportFailure::kBadReply};
  }
  const unsigned status = result.reply->status;
  if (status == 200) return std::nullopt;
  return PollError{render_migrate_reply(read, *result.reply), status == 503 || status == 504};
}

// One GET /v1/migrations, then one GET per operation the list lacks.
std::optional<PollError> poll_once(const MigrateInvocation& inv, CtlIo& io,
                                   const std::vector<std::string>& ids,
                                   std::map<std::string, OpView>& latest) {
  const MigrateInvocation list_read = reading(inv, MigrateCommand::kList);
  const HttpResult listed = io.exchange({"GET", "/v1/migrations", "", ""});
  if (auto error = failed_exchange(list_read, listed)) return error;
  auto ops = parse_op_list(listed.reply->body);
  if (!ops.is_ok()) return PollError{render_migrate_reply(list_read, *listed.reply), false};
  std::map<std::string, OpView> found;
  for (OpView& op : *ops) {
    if (std::find(ids.begin(), ids.end(), op.id) != ids.end()) found[op.id] = std::move(op);
  }
  MigrateInvocation show_read = reading(inv, MigrateCommand::kShow);
  for (const std::string& id : ids) {
    if (found.count(id) > 0) continue;
    show_read.operation = id;
    const HttpResult shown = io.exchange(build_migrate_request(show_read));
    if (auto error = failed_exchange(show_read, shown)) return error;
    auto op = parse_op(shown.reply->body);
    if (!op.is_ok()) return PollError{render_migrate_reply(show_read, *shown.reply), false};
    found[id] = std::move(*op);
  }
  latest = std::move(found);
  return std::nullopt;
}

// {"id": batch, "migrations": [...]}; without a batch (migrations --watch),
// {"migrations": [...]}.
std::string final_json(const std::string& batch_id, const std::vector<OpView>& ops) {
  std::string out = "{";
  if (!batch_id.empty()) {
    out += "\"id\":";
    server::append_json_string(out, batch_id);
    out += ",";
  }
  out += "\"migrations\":[";
  for (std::size_t i = 0; i < ops.size(); ++i) out += (i > 0 ? "," : "") + ops[i].json;
  return out + "]}\n";
}

// The last word once every operation ended: exit 0 only if all are done.
int finish(const MigrateInvocation& inv, CtlIo& io, const BatchView& batch,
           const std::vector<OpView>& ops) {
  std::size_t done = 0;
  std::string not_done;
  for (const OpView& op : ops) {
    if (op.stage == "done") {
      ++done;
    } else if (not_done.size() < 400) {
      not_done += fmt::format("{}{} {}{}", not_done.empty() ? "" : "; ", op.id, op.stage,
                              op.error.empty() ? "" : ": " + op.error);
    }
  }
  const bool all_done = done == ops.size();
  if (inv.globals.json) {
    io.out(final_json(batch.id, ops));
  } else {
    io.out(
        fmt::format("{} of {} operation{} done\n", done, ops.size(), ops.size() == 1 ? "" : "s"));
  }
  if (all_done) return kExitOk;
  io.err(fmt::format("nodenomadctl: not every operation ended done: {}\n", not_done));
  return kExitOther;
}

int follow(const MigrateInvocation& inv, CtlIo& io, const BatchView& batch) {
  ProgressDisplay display(io.terminal, io.width, io.height);
  std::map<std::string, OpView> latest;
  int failed_polls = 0;
  while (true) {
    if (auto error = poll_once(inv, io, batch.operations, latest)) {
      if (!error->retryable || ++failed_polls >= kMaxFailedPolls) {
        error->output.err += fmt::format(
            "nodenomadctl: stopped following batch {}; its operations go on in the cluster "
            "(nodenomadctl migrations)\n",
            batch.id);
        return emit(io, error->output);
      }
      if (failed_polls == 1) io.err(error->output.err);  // once per run of failures
    } else {
      failed_polls = 0;
      std::vector<OpView> ops;
      for (const std::string& id : batch.operations) ops.push_back(latest.at(id));
      if (!inv.globals.json) io.out(display.update(ops, io.now_ms()));
      const bool all_ended =
          std::all_of(ops.begin(), ops.end(), [](const OpView& op) { return op.ended(); });
      if (all_ended) return finish(inv, io, batch, ops);
    }
    io.sleep_ms(inv.interval_ms);
  }
}

// One GET /v1/migrations: every operation, or why not.
std::optional<PollError> poll_list(const MigrateInvocation& inv, CtlIo& io,
                                   std::vector<OpView>& ops) {
  const MigrateInvocation list_read = reading(inv, MigrateCommand::kList);
  const HttpResult listed = io.exchange({"GET", "/v1/migrations", "", ""});
  if (auto error = failed_exchange(list_read, listed)) return error;
  auto parsed = parse_op_list(listed.reply->body);
  if (!parsed.is_ok()) return PollError{render_migrate_reply(list_read, *listed.reply), false};
  ops = std::move(*parsed);
  return std::nullopt;
}

// What `migrations --watch` follows: the batches that have an operation
// running at its first answered poll (all of their operations, so that a
// rebalance shows whole even when its first moves ended before the watch
// began), then every operation that poll did not list (one started later,
// even if it ended between two polls), in order of first sight.
class WatchedSet {
 public:
  void update(const std::vector<OpView>& ops) {
    if (!started_) {
      started_ = true;
      std::set<std::string> running_batches;
      for (const OpView& op : ops) {
        if (!op.ended() && !op.batch_id.empty()) running_batches.insert(op.batch_id);
      }
      for (const OpView& op : ops) {
        listed_at_start_.insert(op.id);
        if (!op.ended() || running_batches.count(op.batch_id) > 0) add(op);
      }
      return;
    }
    for (const OpView& op : ops) {
      if (latest_.count(op.id) > 0 || listed_at_start_.count(op.id) == 0) add(op);
    }
  }
  bool empty() const { return order_.empty(); }
  std::vector<OpView> views() const {
    std::vector<OpView> out;
    for (const std::string& id : order_) out.push_back(latest_.at(id));
    return out;
  }

 private:
  void add(const OpView& op) {
    if (latest_.count(op.id) == 0) order_.push_back(op.id);
    latest_[op.id] = op;
  }

  bool started_ = false;
  std::set<std::string> listed_at_start_;
  std::vector<std::string> order_;
  std::map<std::string, OpView> latest_;
};

int watch_migrations(const MigrateInvocation& inv, CtlIo& io, std::uint64_t max_frames) {
  ProgressDisplay display(io.terminal, io.width, io.height);
  WatchedSet watched;
  int failed_polls = 0;
  bool said_waiting = false;
  for (std::uint64_t frame = 0; max_frames == 0 || frame < max_frames; ++frame) {
    if (frame > 0) io.sleep_ms(inv.interval_ms);
    std::vector<OpView> ops;
    if (auto error = poll_list(inv, io, ops)) {
      if (!error->retryable || ++failed_polls >= kMaxFailedPolls) {
        error->output.err +=
            "nodenomadctl: stopped watching; the operations go on in the cluster "
            "(nodenomadctl migrations)\n";
        return emit(io, error->output);
      }
      if (failed_polls == 1) io.err(error->output.err);  // once per run of failures
      continue;
    }
    failed_polls = 0;
    watched.update(ops);
    if (watched.empty()) {
      if (!said_waiting) io.err("no migration running; waiting for one to start (Ctrl-C stops)\n");
      said_waiting = true;
      continue;
    }
    const std::vector<OpView> views = watched.views();
    if (!inv.globals.json) io.out(display.update(views, io.now_ms()));
    const bool all_ended =
        std::all_of(views.begin(), views.end(), [](const OpView& op) { return op.ended(); });
    if (all_ended) return finish(inv, io, BatchView{}, views);
  }
  return kExitOk;
}

// One frame of `status --watch`: the cluster's tables, then the migrations
// that have not ended (left out when the node does not serve them).
std::string status_frame(const MigrateInvocation& inv, CtlIo& io) {
  std::string frame =
      fmt::format("{}, every {}, {} UTC (Ctrl-C stops)\n\n", inv.globals.endpoint.to_string(),
                  server::format_duration_ms(inv.interval_ms), format_clock_utc(io.now_ms()));
  const MigrateInvocation read = reading(inv, MigrateCommand::kList);
  const HttpResult cluster = io.exchange({"GET", "/v1/cluster", "", ""});
  if (auto error = failed_exchange(read, cluster)) return frame + error->output.err;
  auto tables = render_cluster_table(cluster.reply->body);
  if (!tables.is_ok()) {
    return frame + "nodenomadctl: bad reply: " + std::string(tables.status().message()) + "\n";
  }
  frame += *tables;
  const HttpResult listed = io.exchange({"GET", "/v1/migrations", "", ""});
  if (failed_exchange(read, listed)) return frame;
  auto ops = parse_op_list(listed.reply->body);
  if (!ops.is_ok()) return frame;
  std::vector<OpView> running;
  for (OpView& op : *ops) {
    if (!op.ended()) running.push_back(std::move(op));
  }
  if (running.empty()) return frame + "\nno migration running\n";
  return frame + "\n" + migrations_table(running);
}

int watch_status(const MigrateInvocation& inv, CtlIo& io, std::uint64_t max_frames) {
  for (std::uint64_t frame = 0; max_frames == 0 || frame < max_frames; ++frame) {
    if (frame > 0) io.sleep_ms(inv.interval_ms);
    // Both requests first, then one write: the screen is never half drawn.
    const std::string text = status_frame(inv, io);
    io.out(io.terminal ? std::string(kClearScreen) + text : text + "\n");
  }
  return kExitOk;
}

}  // namespace

bool ProgressDisplay::worth_a_line(const OpView& op, std::uint64_t now_ms) const {
  const auto it = shown_.find(op.id);
  if (it == shown_.end()) return true;
  const Shown& last = it->second;
  if (last.stage != op.stage || last.paused != op.paused || last.queued != op.queued ||
      last.cancel_requested != op.cancel_requested) {
    return true;
  }
  if (op.ended()) return false;
  if (decile_of(op.percent) > last.decile) return true;
  return now_ms >= last.at_ms + kPlainRepeatMs && op.bytes_done != last.bytes_done;
}

std::vector<std::string> ProgressDisplay::terminal_lines(const std::vector<OpView>& ops) const {
  std::vector<std::string> lines;
  const std::size_t rows = height_ > kFreeRows ? height_ - kFreeRows : 0;
  if (height_ == 0 || ops.size() <= rows + 1) {
    for (const OpView& op : ops) lines.push_back(progress_line(op));
    return lines;
  }
  // Too many for the screen: the running operations first, in order, then
  // the ended ones, and a line for those left out.
  std::vector<const OpView*> order;
  for (const OpView& op : ops) {
    if (!op.ended()) order.push_back(&op);
  }
  for (const OpView& op : ops) {
    if (op.ended()) order.push_back(&op);
  }
  std::size_t done = 0;
  std::size_t ended = 0;
  for (std::size_t i = rows; i < order.size(); ++i) {
    done += order[i]->stage == "done" ? 1 : 0;
    ended += order[i]->ended() ? 1 : 0;
  }
  for (std::size_t i = 0; i < rows; ++i) lines.push_back(progress_line(*order[i]));
  lines.push_back(fmt::format("... and {} more: {} running, {} done, {} failed or cancelled",
                              order.size() - rows, order.size() - rows - ended, done,
                              ended - done));
  return lines;
}

std::string ProgressDisplay::update(const std::vector<OpView>& ops, std::uint64_t now_ms) {
  std::string out;
  if (terminal_) {
    // Back to the first line drawn, then every line again, cut to the width
    // so that none wraps (a wrapped line would throw the cursor-up count
    // off), then erase what a longer earlier frame left below.
    if (lines_drawn_ > 0) out += fmt::format("\x1b[{}A", lines_drawn_);
    const std::size_t columns = width_ > 1 ? width_ - 1 : 0;
    const std::vector<std::string> lines = terminal_lines(ops);
    for (const std::string& line : lines) {
      out += kEraseLine;
      out += fit_width(line, columns) + "\n";
    }
    out += kEraseBelow;
    lines_drawn_ = lines.size();
    return out;
  }
  for (const OpView& op : ops) {
    if (!worth_a_line(op, now_ms)) continue;
    out += progress_line(op) + "\n";
    shown_[op.id] =
        Shown{op.stage,      op.paused, op.queued, op.cancel_requested, decile_of(op.percent),
              op.bytes_done, now_ms};
  }
  return out;
}

int run_migrate_command(const MigrateInvocation& inv, CtlIo& io, std::uint64_t max_frames) {
  if (inv.command == MigrateCommand::kStatusWatch) return watch_status(inv, io, max_frames);
  if (inv.command == MigrateCommand::kWatchList) return watch_migrations(inv, io, max_frames);
  const HttpResult started = io.exchange(build_migrate_request(inv));
  if (!started.reply) return emit(io, render_migrate_failure(inv, started.failure, started.detail));
  const HttpReply& reply = *started.reply;
  const bool success = reply.status >= 200 && reply.status < 300;
  if (!follows(inv.command) || !inv.wait || !success) {
    return emit(io, render_migrate_reply(inv, reply));
  }
  auto batch = parse_batch(reply.body);
  if (!batch.is_ok()) return emit(io, render_migrate_reply(inv, reply));  // says: bad reply
  if (!inv.globals.json) {
    io.out(batch->operations.empty()
               ? std::string("nothing to move: no operation started\n")
               : fmt::format("batch {}: {} operation{} started\n", batch->id,
                             batch->operations.size(), batch->operations.size() == 1 ? "" : "s"));
  }
  if (batch->operations.empty()) return inv.globals.json ? finish(inv, io, *batch, {}) : kExitOk;
  return follow(inv, io, *batch);
}

}  // namespace nodenomad::ctl
