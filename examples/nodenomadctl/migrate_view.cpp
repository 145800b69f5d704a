// Migration operations as the server describes them (docs/http_api.md,
// "Migrations"), read with Boost.JSON, and what the one-shot commands print.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/json.hpp>

#include "migrate_cli.hpp"
#include "server/json_text.hpp"

namespace nodenomad::ctl {
namespace {

namespace json = boost::json;

// Server text shown on a terminal is cut to this many bytes.
constexpr std::size_t kMaxShownBytes = 200;
constexpr std::size_t kMaxNoteBytes = 60;

// Control bytes from the server become '?' (no escape sequences reach the
// terminal); long text is cut.
std::string printable(std::string_view text, std::size_t max_bytes = kMaxShownBytes) {
  std::string out(text.substr(0, max_bytes));
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

std::optional<json::value> parse_json(std::string_view body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec) return std::nullopt;
  return value;
}

std::string text_of(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? printable(v->get_string()) : std::string();
}

std::uint64_t count_of(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
  if (v->is_double() && v->get_double() >= 0 && v->get_double() < 1.8e19) {
    return static_cast<std::uint64_t>(v->get_double());
  }
  return 0;
}

std::optional<double> number_of(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return std::nullopt;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return std::nullopt;
}

bool flag_of(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v != nullptr && v->is_bool() && v->get_bool();
}

void read_progress(const json::object& p, OpView& op) {
  op.bytes_total = count_of(p, "bytes_total");
  op.bytes_done = count_of(p, "bytes_done");
  op.keys_total = count_of(p, "keys_total");
  op.keys_done = count_of(p, "keys_done");
  op.percent = number_of(p, "percent").value_or(0);
  op.rate_bytes_per_s = number_of(p, "rate_bytes_per_s").value_or(0);
  op.eta_s = number_of(p, "eta_s");
}

Result<OpView> op_from(const json::object& o) {
  OpView op;
  op.id = text_of(o, "id");
  op.stage = text_of(o, "stage");
  if (op.id.empty() || op.stage.empty()) {
    return Status::invalid_argument("an operation without an \"id\" or \"stage\"");
  }
  op.batch_id = text_of(o, "batch_id");
  op.shard = count_of(o, "shard");
  op.source = text_of(o, "source");
  op.target = text_of(o, "target");
  if (const json::value* p = o.if_contains("progress"); p != nullptr && p->is_object()) {
    read_progress(p->get_object(), op);
  }
  op.started_at = text_of(o, "started_at");
  op.finished_at = text_of(o, "finished_at");
  op.error = text_of(o, "error");
  op.queued = flag_of(o, "queued");
  op.paused = flag_of(o, "paused");
  op.cancel_requested = flag_of(o, "cancel_requested");
  op.bandwidth_bytes_per_s = count_of(o, "bandwidth_bytes_per_s");
  if (const json::value* s = o.if_contains("stage_ms"); s != nullptr && s->is_object()) {
    for (const auto& entry : s->get_object()) {
      op.stage_ms.emplace_back(printable(entry.key()), count_of(s->get_object(), entry.key()));
    }
  }
  op.verify_mismatches = count_of(o, "verify_mismatches");
  op.bytes_freed = count_of(o, "bytes_freed");
  op.json = json::serialize(o);
  return op;
}

std::uint64_t total_stage_ms(const OpView& op) {
  std::uint64_t total = 0;
  for (const auto& [stage, ms] : op.stage_ms) total += ms;
  return total;
}

// "queued", "paused", "cancelling" and an ended operation's error.
std::string notes_of(const OpView& op) {
  std::vector<std::string> notes;
  if (op.queued) notes.emplace_back("queued");
  if (op.paused) notes.emplace_back("paused");
  if (op.cancel_requested && !op.ended()) notes.emplace_back("cancelling");
  if (op.ended() && !op.error.empty()) notes.push_back(printable(op.error, kMaxNoteBytes));
  return fmt::format("{}", fmt::join(notes, ", "));
}

std::string table(const std::vector<std::pair<std::string_view, bool>>& columns,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& [header, right] : columns) widths.push_back(header.size());
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  const auto line = [&](const auto& cells) {
    std::string out;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const std::string_view cell = cells[i];
      if (i > 0) out += "  ";
      if (columns[i].second) {
        out += fmt::format("{:>{}}", cell, widths[i]);
      } else {
        out += i + 1 == columns.size() ? std::string(cell) : fmt::format("{:<{}}", cell, widths[i]);
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::vector<std::string_view> headers;
  for (const auto& [header, right] : columns) headers.push_back(header);
  std::string out = line(headers);
  for (const auto& row : rows) out += line(row);
  return out;
}

bool is_write(MigrateCommand command) {
  return command != MigrateCommand::kList && command != MigrateCommand::kShow &&
         command != MigrateCommand::kStatusWatch;
}

std::string json_error(std::string_view code, std::string_view message) {
  std::string out = "{\"error\":{\"code\":";
  server::append_json_string(out, code);
  out += ",\"message\":";
  server::append_json_string(out, message);
  return out + "}}\n";
}

std::string with_newline(std::string text) {
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

CtlOutput render_error(const MigrateInvocation& inv, const HttpReply& reply) {
  CtlOutput output;
  output.exit_code =
      reply.status == 409 ? kExitVersionMismatch : exit_code_for_http_status(reply.status);
  const auto body = parse_json(reply.body);
  const json::object* error = nullptr;
  if (body && body->is_object()) {
    const json::value* e = body->get_object().if_contains("error");
    if (e != nullptr && e->is_object()) error = &e->get_object();
  }
  std::string code = error ? text_of(*error, "code") : "";
  const std::string message = error ? text_of(*error, "message") : printable(reply.body);
  if (code.empty()) code = fmt::format("http_{}", reply.status);
  std::string hint;
  if (reply.status == 409) {
    hint = "; nothing started: run the command again";
  } else if (output.exit_code == kExitUnavailable) {
    hint = "; not applied, safe to retry";
  } else if (output.exit_code == kExitUnknownOutcome && is_write(inv.command)) {
    hint = "; the outcome is unknown: it may or may not have been applied";
  }
  output.err = fmt::format("nodenomadctl: {}: {}{}\n", code, message, hint);
  if (inv.globals.json) output.out = error ? with_newline(reply.body) : json_error(code, message);
  return output;
}

std::string batch_text(const BatchView& batch) {
  if (batch.operations.empty()) return "nothing to move: no operation started\n";
  std::string out = fmt::format("batch {}: {} operation{} started\n", batch.id,
                                batch.operations.size(), batch.operations.size() == 1 ? "" : "s");
  for (const auto& op : batch.operations) out += op + "\n";
  return out;
}

Result<std::string> success_text(const MigrateInvocation& inv, const HttpReply& reply) {
  switch (inv.command) {
    case MigrateCommand::kMigrate:
    case MigrateCommand::kRebalance:
    case MigrateCommand::kDrain: {
      NN_ASSIGN_OR_RETURN(const BatchView batch, parse_batch(reply.body));
      return batch_text(batch);
    }
    case MigrateCommand::kList: {
      NN_ASSIGN_OR_RETURN(const auto ops, parse_op_list(reply.body));
      return migrations_table(ops);
    }
    default:
      break;
  }
  NN_ASSIGN_OR_RETURN(const OpView op, parse_op(reply.body));
  switch (inv.command) {
    case MigrateCommand::kShow:
      return migration_details(op);
    case MigrateCommand::kCancel:
      return "cancel requested: " + progress_line(op) + "\n";
    case MigrateCommand::kPause:
      return "paused: " + progress_line(op) + "\n";
    case MigrateCommand::kResume:
      return "resumed: " + progress_line(op) + "\n";
    default:
      return fmt::format("bandwidth {}: {}\n", format_rate(double(op.bandwidth_bytes_per_s)),
                         progress_line(op));
  }
}

}  // namespace

Result<OpView> parse_op(std::string_view body) {
  const auto value = parse_json(body);
  if (!value || !value->is_object()) {
    return Status::invalid_argument("an operation that is not a JSON object");
  }
  return op_from(value->get_object());
}

Result<std::vector<OpView>> parse_op_list(std::string_view body) {
  const auto value = parse_json(body);
  const json::value* list =
      value && value->is_object() ? value->get_object().if_contains("migrations") : nullptr;
  if (list == nullptr || !list->is_array()) {
    return Status::invalid_argument("not a {\"migrations\": [...]} object");
  }
  std::vector<OpView> ops;
  for (const json::value& item : list->get_array()) {
    if (!item.is_object()) return Status::invalid_argument("an operation that is not an object");
    NN_ASSIGN_OR_RETURN(OpView op, op_from(item.get_object()));
    ops.push_back(std::move(op));
  }
  return ops;
}

Result<BatchView> parse_batch(std::string_view body) {
  const auto value = parse_json(body);
  const json::object* o = value && value->is_object() ? &value->get_object() : nullptr;
  const json::value* ops = o ? o->if_contains("operations") : nullptr;
  if (ops == nullptr || !ops->is_array()) {
    return Status::invalid_argument("not an {\"id\", \"operations\": [...]} object");
  }
  BatchView batch;
  batch.id = text_of(*o, "id");
  for (const json::value& id : ops->get_array()) {
    if (!id.is_string() || id.get_string().empty()) {
      return Status::invalid_argument("an operation id that is not a string");
    }
    batch.operations.push_back(printable(id.get_string()));
  }
  batch.json = std::string(body);
  return batch;
}

std::string progress_line(const OpView& op) {
  std::string line =
      fmt::format("{}  shard {}  {} -> {}  {}", op.id, op.shard, op.source, op.target, op.stage);
  if (op.stage == "done") {
    line += fmt::format("  100%  in {}", format_elapsed_ms(total_stage_ms(op)));
    if (op.bytes_total > 0) line += "  " + format_bytes(op.bytes_total);
  } else if (op.ended()) {
    line += op.error.empty() ? "" : ": " + printable(op.error, kMaxNoteBytes);
  } else {
    line += fmt::format("  {}  {}  ETA {}", format_percent(op.percent),
                        format_rate(op.rate_bytes_per_s), format_eta(op.eta_s));
    const std::string notes = notes_of(op);
    if (!notes.empty()) line += "  [" + notes + "]";
  }
  return line;
}

std::string migrations_table(const std::vector<OpView>& ops) {
  if (ops.empty()) return "no migrations\n";
  std::vector<std::vector<std::string>> rows;
  for (const OpView& op : ops) {
    const bool running = !op.ended();
    rows.push_back({op.id, std::to_string(op.shard), op.source.empty() ? "-" : op.source,
                    op.target.empty() ? "-" : op.target, op.stage, format_percent(op.percent),
                    running ? format_rate(op.rate_bytes_per_s) : "-",
                    running ? format_eta(op.eta_s) : "-", notes_of(op)});
  }
  return table({{"OP", false},
                {"SHARD", true},
                {"FROM", false},
                {"TO", false},
                {"STAGE", false},
                {"DONE", true},
                {"RATE", true},
                {"ETA", true},
                {"NOTE", false}},
               rows);
}

std::string migration_details(const OpView& op) {
  std::string stages;
  for (const auto& [stage, ms] : op.stage_ms) {
    if (ms == 0) continue;
    stages += fmt::format("{}{} {}", stages.empty() ? "" : ", ", stage, format_elapsed_ms(ms));
  }
  const std::string notes = notes_of(op);
  std::string out;
  out += fmt::format("operation  {} (batch {})\n", op.id, op.batch_id.empty() ? "-" : op.batch_id);
  out += fmt::format("shard      {}: {} -> {}\n", op.shard, op.source, op.target);
  out += fmt::format("stage      {}{}\n", op.stage,
                     notes.empty() || op.ended() ? "" : " (" + notes + ")");
  out += fmt::format("progress   {}: {} of {}, {} of {} keys\n", format_percent(op.percent),
                     format_bytes(op.bytes_done), format_bytes(op.bytes_total), op.keys_done,
                     op.keys_total);
  out += fmt::format("rate       {}, ETA {}\n", format_rate(op.rate_bytes_per_s),
                     format_eta(op.eta_s));
  out += fmt::format("bandwidth  {}\n",
                     op.bandwidth_bytes_per_s > 0
                         ? format_rate(double(op.bandwidth_bytes_per_s)) + " (this operation)"
                         : std::string("the node's limit"));
  out += fmt::format("started    {}\n", op.started_at.empty() ? "-" : op.started_at);
  out += fmt::format("finished   {}\n", op.finished_at.empty() ? "-" : op.finished_at);
  out += fmt::format("stages     {}\n", stages.empty() ? "-" : stages);
  out += fmt::format("verify     {} mismatching bucket{} re-sent\n", op.verify_mismatches,
                     op.verify_mismatches == 1 ? "" : "s");
  out += fmt::format("freed      {}\n", format_bytes(op.bytes_freed));
  out += fmt::format("error      {}\n", op.error.empty() ? "-" : op.error);
  return out;
}

CtlOutput render_migrate_reply(const MigrateInvocation& inv, const HttpReply& reply) {
  if (reply.status < 200 || reply.status >= 300) return render_error(inv, reply);
  auto text = success_text(inv, reply);
  if (!text.is_ok()) {
    return render_migrate_failure(
        inv, TransportFailure::kBadReply,
        fmt::format("HTTP {} with an unexpected body ({}): {}", reply.status,
                    text.status().message(), printable(reply.body)));
  }
  CtlOutput output;
  output.out = inv.globals.json ? with_newline(reply.body) : std::move(*text);
  return output;
}

CtlOutput render_migrate_failure(const MigrateInvocation& inv, TransportFailure failure,
                                 std::string_view detail) {
  const std::string address = inv.globals.endpoint.to_string();
  CtlOutput output;
  std::string code;
  std::string message;
  switch (failure) {
    case TransportFailure::kCannotConnect:
      output.exit_code = kExitCannotConnect;
      code = "cannot_connect";
      message = fmt::format("cannot connect to {}: {}; nothing was sent", address, detail);
      break;
    case TransportFailure::kNoReply:
      output.exit_code = kExitUnknownOutcome;
      code = "unknown_outcome";
      message = fmt::format("no answer from {}: {}{}", address, detail,
                            is_write(inv.command) ? "; it may or may not have been applied" : "");
      break;
    case TransportFailure::kBadReply:
      output.exit_code = kExitOther;
      code = "bad_reply";
      message = fmt::format("bad reply from {}: {}", address, detail);
      break;
  }
  output.err = fmt::format("nodenomadctl: {}\n", message);
  if (inv.globals.json) output.out = json_error(code, message);
  return output;
}

}  // namespace nodenomad::ctl
