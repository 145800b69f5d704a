// The command lines of nodenomadctl's migration commands, and their requests.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include "migrate_cli.hpp"
#include "server/config_values.hpp"
#include "server/json_text.hpp"

namespace nodenomad::ctl {
namespace {

using server::quote_for_message;

// Options that take a value: ctl_args.cpp's, then this file's. Both lists
// decide which word is the command, so they must agree with ctl_args.cpp.
constexpr std::array<std::string_view, 5> kGlobalValueOptions = {
    "--endpoint", "--timeout-ms", "--ttl", "--if-version", "--consistency"};
constexpr std::array<std::string_view, 11> kOwnValueOptions = {
    "--shards",   "--from", "--to",          "--bandwidth",  "--interval",  "--rate",
    "--duration", "--keys", "--connections", "--value-size", "--key-prefix"};
constexpr std::array<std::string_view, 2> kOwnFlags = {"--no-wait", "--watch"};
constexpr std::array<std::string_view, 10> kCommandWords = {
    "migrate", "rebalance", "drain",  "migrations", "migration",
    "cancel",  "pause",     "resume", "bandwidth",  "load"};
// Where the options apply.
constexpr std::array<std::string_view, 6> kLoadOptions = {
    "--rate", "--duration", "--keys", "--connections", "--value-size", "--key-prefix"};
constexpr std::array<std::string_view, 4> kMigrateOptions = {"--shards", "--from", "--to",
                                                             "--bandwidth"};
constexpr std::uint64_t kMinLoadDurationMs = 100;
constexpr std::size_t kMaxKeyPrefixBytes = 256;
constexpr std::uint64_t kMinIntervalMs = 100;
constexpr std::uint64_t kMaxIntervalMs = 3'600'000;
constexpr std::size_t kMaxOperationIdBytes = 256;

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

Status usage(std::string message) { return Status::invalid_argument(std::move(message)); }

Status bad_value(std::string_view option, std::string_view text, std::string_view why) {
  return usage(fmt::format("{}={}: {}", option, quote_for_message(text), why));
}

// argv split as ctl_args.cpp splits it: options (with their values) and words.
struct SplitArgs {
  std::vector<std::string_view> words;
  std::vector<std::string_view> global_args;  // handed to parse_ctl_args
  std::vector<std::pair<std::string_view, std::string_view>> own_values;  // --shards=3,7
  std::vector<std::string_view> own_flags;
  std::string_view missing_value;    // an own option given without its value
  std::string_view flag_with_value;  // "--watch=1"
};

// Reads the option at argv[i] and its value (advancing i when separate).
void split_option(int argc, const char* const* argv, int& i, SplitArgs& out) {
  const std::string_view arg = argv[i];
  const std::string_view name = arg.substr(0, arg.find('='));
  const bool has_value = name.size() < arg.size();
  const bool takes_value = contains(kGlobalValueOptions, name) || contains(kOwnValueOptions, name);
  std::string_view value;
  bool value_given = has_value;
  if (has_value) {
    value = arg.substr(name.size() + 1);
  } else if (takes_value && i + 1 < argc && std::string_view(argv[i + 1]).substr(0, 2) != "--") {
    value = argv[++i];
    value_given = true;
  }
  if (contains(kOwnValueOptions, name)) {
    out.own_values.emplace_back(name, value_given ? value : std::string_view());
    if (!value_given) out.missing_value = name;
  } else if (contains(kOwnFlags, name)) {
    out.own_flags.push_back(name);
    if (has_value) out.flag_with_value = name;
  } else {
    // Global options (and unknown ones) go to parse_ctl_args, which knows
    // them and says what is wrong with them.
    out.global_args.push_back(arg);
    if (takes_value && !has_value && value_given) out.global_args.push_back(value);
  }
}

SplitArgs split_args(int argc, const char* const* argv) {
  SplitArgs out;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.words.push_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else {
      split_option(argc, argv, i, out);
    }
  }
  return out;
}

bool has_flag(const SplitArgs& args, std::string_view flag) {
  return std::find(args.own_flags.begin(), args.own_flags.end(), flag) != args.own_flags.end();
}

std::optional<std::string_view> own_value(const SplitArgs& args, std::string_view name) {
  for (const auto& [n, v] : args.own_values) {
    if (n == name) return v;
  }
  return std::nullopt;
}

MigrateCommand command_of(std::string_view word) {
  if (word == "migrate") return MigrateCommand::kMigrate;
  if (word == "rebalance") return MigrateCommand::kRebalance;
  if (word == "drain") return MigrateCommand::kDrain;
  if (word == "migrations") return MigrateCommand::kList;
  if (word == "migration") return MigrateCommand::kShow;
  if (word == "cancel") return MigrateCommand::kCancel;
  if (word == "pause") return MigrateCommand::kPause;
  if (word == "resume") return MigrateCommand::kResume;
  if (word == "bandwidth") return MigrateCommand::kBandwidth;
  if (word == "load") return MigrateCommand::kLoad;
  return MigrateCommand::kStatusWatch;
}

std::string_view command_usage(MigrateCommand command) {
  switch (command) {
    case MigrateCommand::kMigrate:
      return "nodenomadctl migrate --shards 3,7 --from NODE --to NODE [--bandwidth SIZE] "
             "[--no-wait]";
    case MigrateCommand::kRebalance:
      return "nodenomadctl rebalance [--no-wait]";
    case MigrateCommand::kDrain:
      return "nodenomadctl drain NODE [--no-wait]";
    case MigrateCommand::kList:
      return "nodenomadctl migrations";
    case MigrateCommand::kShow:
      return "nodenomadctl migration OP";
    case MigrateCommand::kCancel:
      return "nodenomadctl cancel OP";
    case MigrateCommand::kPause:
      return "nodenomadctl pause OP";
    case MigrateCommand::kResume:
      return "nodenomadctl resume OP";
    case MigrateCommand::kBandwidth:
      return "nodenomadctl bandwidth OP SIZE";
    case MigrateCommand::kStatusWatch:
      return "nodenomadctl status --watch [--interval 1s]";
    case MigrateCommand::kWatchList:
      return "nodenomadctl migrations --watch [--interval 1s]";
    case MigrateCommand::kLoad:
      return "nodenomadctl load [--rate 200] [--duration 60s] [--keys 1000] [--connections 2] "
             "[--value-size 100B] [--key-prefix load-]";
    case MigrateCommand::kHelp:
      break;
  }
  return "nodenomadctl --help";
}

std::size_t argument_count(MigrateCommand command) {
  switch (command) {
    case MigrateCommand::kDrain:
    case MigrateCommand::kShow:
    case MigrateCommand::kCancel:
    case MigrateCommand::kPause:
    case MigrateCommand::kResume:
      return 1;
    case MigrateCommand::kBandwidth:
      return 2;
    default:
      return 0;
  }
}

bool follows(MigrateCommand command) {
  return command == MigrateCommand::kMigrate || command == MigrateCommand::kRebalance ||
         command == MigrateCommand::kDrain;
}

Status read_arguments(const std::vector<std::string_view>& words, MigrateInvocation& inv) {
  const std::size_t wanted = argument_count(inv.command);
  const std::size_t got = words.size() - 1;
  if (got != wanted) {
    return usage(fmt::format("{} argument{} given, {} expected; usage: {}", got,
                             got == 1 ? "" : "s", wanted, command_usage(inv.command)));
  }
  if (inv.command == MigrateCommand::kDrain) {
    auto node = server::parse_node_id(words[1]);
    if (!node.is_ok()) return bad_value("NODE", words[1], node.status().message());
    inv.node = node->str();
  } else if (wanted > 0) {
    if (words[1].empty() || words[1].size() > kMaxOperationIdBytes) {
      return bad_value("OP", words[1], "an operation id is 1 to 256 bytes (e.g. op-12)");
    }
    inv.operation = std::string(words[1]);
  }
  if (inv.command == MigrateCommand::kBandwidth) {
    auto bandwidth = parse_bandwidth(words[2]);
    if (!bandwidth.is_ok()) return bad_value("SIZE", words[2], bandwidth.status().message());
    inv.bandwidth_bytes_per_s = *bandwidth;
  }
  return Status::ok();
}

// A whole number in [low, high] for `option`.
Result<std::uint64_t> parse_count(std::string_view option, std::string_view text,
                                  std::uint64_t low, std::uint64_t high) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < low ||
      value > high) {
    return bad_value(option, text,
                     fmt::format("expected a whole number from {} to {}", low, high));
  }
  return value;
}

// One of load's options (load_cli.hpp has the bounds).
Status apply_load_option(std::string_view name, std::string_view text, LoadOptions& load) {
  if (name == "--rate") {
    NN_ASSIGN_OR_RETURN(load.rate_per_s, parse_count(name, text, 1, kMaxLoadRate));
  } else if (name == "--keys") {
    NN_ASSIGN_OR_RETURN(load.keys, parse_count(name, text, 1, kMaxLoadKeys));
  } else if (name == "--connections") {
    NN_ASSIGN_OR_RETURN(load.connections, parse_count(name, text, 1, kMaxLoadConnections));
  } else if (name == "--duration") {
    auto ms = server::parse_duration_ms(text);
    if (!ms.is_ok()) return bad_value(name, text, ms.status().message());
    if (*ms < kMinLoadDurationMs || *ms > kMaxLoadDurationMs) {
      return bad_value(name, text, "expected 100ms to 24h (leave it out to run until Ctrl-C)");
    }
    load.duration_ms = *ms;
  } else if (name == "--value-size") {
    auto bytes = server::parse_size_bytes(text);
    if (!bytes.is_ok()) return bad_value(name, text, bytes.status().message());
    if (*bytes < 1 || *bytes > kMaxLoadValueBytes) {
      return bad_value(name, text, "expected 1B to 1MB");
    }
    load.value_bytes = *bytes;
  } else {
    if (text.empty() || text.size() > kMaxKeyPrefixBytes) {
      return bad_value(name, text, "a key prefix is 1 to 256 bytes");
    }
    load.key_prefix = std::string(text);
  }
  return Status::ok();
}

// Why `name` does not apply to `command`; nullopt when it does.
std::optional<std::string> misplaced(std::string_view name, MigrateCommand command) {
  if (contains(kMigrateOptions, name) && command != MigrateCommand::kMigrate) {
    return fmt::format("{} applies to migrate only", name);
  }
  if (contains(kLoadOptions, name) && command != MigrateCommand::kLoad) {
    return fmt::format("{} applies to load only", name);
  }
  if (name == "--interval" && !follows(command) && command != MigrateCommand::kStatusWatch &&
      command != MigrateCommand::kWatchList) {
    return std::string(
        "--interval applies to migrate, rebalance, drain, status --watch and migrations --watch");
  }
  return std::nullopt;
}

// --shards, --from, --to, --bandwidth (migrate); --interval (following and
// watching); load's options; --no-wait.
Status apply_own_options(const SplitArgs& args, MigrateInvocation& inv) {
  std::vector<std::string_view> seen;
  for (const auto& [name, text] : args.own_values) {
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return usage(fmt::format("{} given twice", name));
    }
    seen.push_back(name);
    if (auto message = misplaced(name, inv.command)) return usage(*message);
    if (contains(kLoadOptions, name)) {
      NN_RETURN_IF_ERROR(apply_load_option(name, text, inv.load));
    } else if (name == "--shards") {
      auto shards = parse_shard_list(text);
      if (!shards.is_ok()) return bad_value(name, text, shards.status().message());
      inv.shards = std::move(*shards);
    } else if (name == "--from" || name == "--to") {
      auto node = server::parse_node_id(text);
      if (!node.is_ok()) return bad_value(name, text, node.status().message());
      (name == "--from" ? inv.source : inv.target) = node->str();
    } else if (name == "--bandwidth") {
      auto bandwidth = parse_bandwidth(text);
      if (!bandwidth.is_ok()) return bad_value(name, text, bandwidth.status().message());
      inv.bandwidth_bytes_per_s = *bandwidth;
    } else {
      auto ms = server::parse_duration_ms(text);
      if (!ms.is_ok()) return bad_value(name, text, ms.status().message());
      if (*ms < kMinIntervalMs || *ms > kMaxIntervalMs) {
        return bad_value(name, text, "expected 100ms to 1h");
      }
      inv.interval_ms = *ms;
    }
  }
  if (has_flag(args, "--no-wait")) {
    if (!follows(inv.command)) return usage("--no-wait applies to migrate, rebalance and drain");
    inv.wait = false;
  }
  return Status::ok();
}

Status check_migrate_complete(const MigrateInvocation& inv) {
  if (inv.command != MigrateCommand::kMigrate) return Status::ok();
  if (inv.shards.empty() || inv.source.empty() || inv.target.empty()) {
    return usage(fmt::format("migrate needs --shards, --from and --to; usage: {}",
                             command_usage(MigrateCommand::kMigrate)));
  }
  return Status::ok();
}

// The global options, parsed by parse_ctl_args as if for `status`.
Result<Invocation> parse_globals(const SplitArgs& args, const EnvLookup& env) {
  std::vector<const char*> argv = {"nodenomadctl", "status"};
  std::vector<std::string> copies(args.global_args.begin(), args.global_args.end());
  for (const auto& a : copies) argv.push_back(a.c_str());
  return parse_ctl_args(static_cast<int>(argv.size()), argv.data(), env);
}

std::string escaped(std::string_view text) {
  std::string out;
  server::append_json_string(out, text);
  return out;
}

}  // namespace

bool is_migrate_command(int argc, const char* const* argv) {
  const SplitArgs args = split_args(argc, argv);
  if (args.words.empty()) return false;
  if (contains(kCommandWords, args.words[0])) return true;
  return args.words[0] == "status" && (has_flag(args, "--watch") || own_value(args, "--interval"));
}

Result<MigrateInvocation> parse_migrate_args(int argc, const char* const* argv,
                                             const EnvLookup& env) {
  const SplitArgs args = split_args(argc, argv);
  MigrateInvocation inv;
  NN_ASSIGN_OR_RETURN(inv.globals, parse_globals(args, env));
  if (inv.globals.command == Command::kHelp) return inv;  // --help wins
  if (!args.missing_value.empty())
    return usage(fmt::format("{} needs a value", args.missing_value));
  if (!args.flag_with_value.empty()) {
    return usage(fmt::format("{} takes no value", args.flag_with_value));
  }
  if (args.words.empty() ||
      (!contains(kCommandWords, args.words[0]) && args.words[0] != "status")) {
    return usage("no migration command (see --help)");
  }
  inv.command = command_of(args.words[0]);
  if (inv.command == MigrateCommand::kStatusWatch && !has_flag(args, "--watch")) {
    return usage("--interval applies to status only with --watch");
  }
  if (inv.command == MigrateCommand::kList && has_flag(args, "--watch")) {
    inv.command = MigrateCommand::kWatchList;
  }
  if (has_flag(args, "--watch") && inv.command != MigrateCommand::kStatusWatch &&
      inv.command != MigrateCommand::kWatchList) {
    return usage("--watch applies to status and migrations only");
  }
  if (inv.command == MigrateCommand::kStatusWatch && inv.globals.json) {
    return usage("status --watch redraws a table for people; scripts poll `status --json`");
  }
  NN_RETURN_IF_ERROR(read_arguments(args.words, inv));
  NN_RETURN_IF_ERROR(apply_own_options(args, inv));
  NN_RETURN_IF_ERROR(check_migrate_complete(inv));
  return inv;
}

HttpRequestSpec build_migrate_request(const MigrateInvocation& inv) {
  const std::string op_path = "/v1/migrations/" + percent_encode(inv.operation);
  switch (inv.command) {
    case MigrateCommand::kMigrate: {
      std::string body = "{\"shards\":[";
      for (std::size_t i = 0; i < inv.shards.size(); ++i) {
        body += (i > 0 ? "," : "") + std::to_string(inv.shards[i]);
      }
      body += "],\"source\":" + escaped(inv.source) + ",\"target\":" + escaped(inv.target);
      if (inv.bandwidth_bytes_per_s > 0) {
        body += ",\"bandwidth_bytes_per_s\":" + std::to_string(inv.bandwidth_bytes_per_s);
      }
      return {"POST", "/v1/migrations", body + "}", "application/json"};
    }
    case MigrateCommand::kRebalance:
      return {"POST", "/v1/rebalance", "", ""};
    case MigrateCommand::kDrain:
      return {"DELETE", "/v1/cluster/nodes/" + percent_encode(inv.node), "", ""};
    case MigrateCommand::kList:
      return {"GET", "/v1/migrations", "", ""};
    case MigrateCommand::kShow:
      return {"GET", op_path, "", ""};
    case MigrateCommand::kCancel:
      return {"DELETE", op_path, "", ""};
    case MigrateCommand::kPause:
      return {"POST", op_path + "/pause", "", ""};
    case MigrateCommand::kResume:
      return {"POST", op_path + "/resume", "", ""};
    case MigrateCommand::kBandwidth:
      return {"PUT", op_path + "/bandwidth",
              "{\"bytes_per_s\":" + std::to_string(inv.bandwidth_bytes_per_s) + "}",
              "application/json"};
    case MigrateCommand::kStatusWatch:
    case MigrateCommand::kWatchList:
    case MigrateCommand::kLoad:
    case MigrateCommand::kHelp:
      break;
  }
  NN_UNREACHABLE("build_migrate_request for help, load or a --watch");
  return {};
}

std::string full_help() {
  static constexpr std::string_view kCommands = R"(
Migration commands:
  migrate --shards 3,7 --from NODE --to NODE [--bandwidth SIZE] [--no-wait]
        move one replica of each shard (ranges: 0-3,9) from NODE to NODE;
        --bandwidth caps the move (50MB = 50MB/s, binary units)
  rebalance [--no-wait]
        start the moves that make the placement match the ring
  drain NODE [--no-wait]
        move every replica off NODE; it leaves the cluster once empty
        (migrate, rebalance and drain follow their operations until they end,
        redrawing progress on a terminal; --no-wait only starts them;
        --interval 1s sets how often they are polled)
  migrations
        a table of every migration operation
  migration OP
        one operation in detail
  cancel OP | pause OP | resume OP
        cancel (rolls back before the update stage), pause or resume OP
  bandwidth OP SIZE
        set OP's bandwidth limit (SIZE per second, e.g. 20MB)
  status --watch [--interval 1s]
        redraw the status tables and the running migrations until Ctrl-C
  migrations --watch [--interval 1s]
        follow every running migration (and those that start meanwhile)
        until all have ended; waits for one to start when none runs

Load:
  load [--rate 200] [--duration 60s] [--keys 1000] [--connections 2]
       [--value-size 100B] [--key-prefix load-]
        PUT at a steady rate over keep-alive connections until the duration
        ends or Ctrl-C, then print the answers counted (ok, not applied,
        unknown, errors) and the latency of the ok ones (p50, p99, max);
        exits 0 unless an answer was an error (7) or no write went through
)";
  static constexpr std::string_view kExitCodes = R"(
Migration commands exit 0 when every operation they followed ended done, 7
when one failed or was cancelled, 3 when the placement changed under the
request (409: nothing started, run it again), and otherwise as above.
Ctrl-C stops following, not the operations.
)";
  std::string help = ctl_help();
  const std::size_t options = help.find("\nOptions (");
  help.insert(options == std::string::npos ? help.size() : options, kCommands);
  return help + std::string(kExitCodes);
}

}  // namespace nodenomad::ctl
