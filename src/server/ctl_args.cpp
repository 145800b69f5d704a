// nodenomadctl's command line: options anywhere, then the command's words.
#include <fmt/format.h>

#include <array>
#include <map>
#include <vector>

#include "server/config_values.hpp"
#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {
namespace {

using server::quote_for_message;

constexpr std::array<std::string_view, 5> kValueOptions = {"--endpoint", "--timeout-ms", "--ttl",
                                                           "--if-version", "--consistency"};
constexpr std::array<std::string_view, 5> kFlagOptions = {"--json", "--verbose", "-v", "--help",
                                                          "-h"};
// TTLs are whole seconds; the bound keeps seconds * 1000 far from overflow.
constexpr std::uint64_t kMaxTtlSeconds = 4'294'967'295;
constexpr std::uint64_t kMaxTimeoutMs = 3'600'000;

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view name) {
  for (const auto n : names) {
    if (n == name) return true;
  }
  return false;
}

struct Options {
  std::map<std::string, std::string, std::less<>> values;  // "--ttl" -> "5"
  bool json = false;
  bool verbose = false;
  bool help = false;
};

Status usage(std::string message) { return Status::invalid_argument(std::move(message)); }

Status set_flag(std::string_view name, Options& options) {
  if (name == "--json") {
    options.json = true;
  } else if (name == "--verbose" || name == "-v") {
    options.verbose = true;
  } else {
    options.help = true;
  }
  return Status::ok();
}

// Reads the option at argv[i] (and its value, advancing i when separate).
Status read_option(int argc, const char* const* argv, int& i, Options& options) {
  const std::string_view arg = argv[i];
  const auto eq = arg.find('=');
  const std::string_view name = arg.substr(0, eq);
  if (contains(kFlagOptions, name)) {
    if (eq != std::string_view::npos) return usage(fmt::format("{} takes no value", name));
    return set_flag(name, options);
  }
  if (!contains(kValueOptions, name)) {
    const bool looks_like_value = arg.size() > 1 && arg[1] >= '0' && arg[1] <= '9';
    return usage(fmt::format("unknown option {}{}", quote_for_message(arg),
                             looks_like_value ? "; to pass a value starting with '-', put -- "
                                                "before it"
                                              : " (see --help)"));
  }
  std::string_view value;
  if (eq != std::string_view::npos) {
    value = arg.substr(eq + 1);
  } else if (i + 1 < argc && std::string_view(argv[i + 1]).substr(0, 2) != "--") {
    value = argv[++i];
  } else {
    return usage(fmt::format("{} needs a value", name));
  }
  if (!options.values.emplace(std::string(name), std::string(value)).second) {
    return usage(fmt::format("{} given twice", name));
  }
  return Status::ok();
}

Status bad_value(std::string_view option, std::string_view text, std::string_view why) {
  return usage(fmt::format("{}={}: {}", option, quote_for_message(text), why));
}

Result<HostPort> parse_endpoint(std::string_view source, std::string_view text) {
  std::string_view rest = text;
  if (rest.substr(0, 8) == "https://") {
    return bad_value(source, text, "https is not supported; expected host:port");
  }
  if (rest.substr(0, 7) == "http://") rest.remove_prefix(7);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto endpoint = server::parse_host_port(rest);
  if (!endpoint.is_ok()) return bad_value(source, text, endpoint.status().message());
  return endpoint;
}

Status apply_globals(const Options& options, const EnvLookup& env, Invocation& inv) {
  inv.json = options.json;
  inv.verbose = options.verbose;
  if (const auto it = options.values.find("--endpoint"); it != options.values.end()) {
    NN_ASSIGN_OR_RETURN(inv.endpoint, parse_endpoint("--endpoint", it->second));
  } else if (auto from_env = env(std::string(kEndpointEnv)); from_env && !from_env->empty()) {
    NN_ASSIGN_OR_RETURN(inv.endpoint, parse_endpoint(kEndpointEnv, *from_env));
  }
  if (const auto it = options.values.find("--timeout-ms"); it != options.values.end()) {
    auto ms = server::parse_bounded_uint(it->second, 1, kMaxTimeoutMs);
    if (!ms.is_ok()) return bad_value("--timeout-ms", it->second, ms.status().message());
    inv.timeout_ms = *ms;
  }
  return Status::ok();
}

std::string_view command_usage(Command command) {
  switch (command) {
    case Command::kPut:
      return "nodenomadctl put KEY VALUE|- [--ttl SECONDS] [--if-version N]";
    case Command::kGet:
      return "nodenomadctl get KEY [--consistency linearizable|lease|stale]";
    case Command::kDel:
      return "nodenomadctl del KEY [--if-version N]";
    case Command::kStatus:
      return "nodenomadctl status";
    case Command::kClusterJoin:
      return "nodenomadctl cluster join ID HOST:PORT";
    case Command::kHelp:
      return "nodenomadctl --help";
  }
  return "";
}

Result<Command> command_of(const std::vector<std::string_view>& words) {
  constexpr std::string_view kExpected = "expected put, get, del, status or cluster join";
  if (words.empty()) return usage(fmt::format("no command; {} (see --help)", kExpected));
  const std::string_view word = words[0];
  if (word == "put") return Command::kPut;
  if (word == "get") return Command::kGet;
  if (word == "del") return Command::kDel;
  if (word == "status") return Command::kStatus;
  if (word == "help") return Command::kHelp;
  if (word == "cluster" && words.size() > 1 && words[1] == "join") return Command::kClusterJoin;
  if (word == "cluster")
    return usage("cluster: expected the subcommand join (cluster join ID HOST:PORT)");
  return usage(fmt::format("unknown command {}; {}", quote_for_message(word), kExpected));
}

// The words a command takes after its name.
std::size_t argument_count(Command command) {
  switch (command) {
    case Command::kPut:
      return 2;
    case Command::kGet:
      return 1;
    case Command::kDel:
      return 1;
    case Command::kClusterJoin:
      return 2;
    case Command::kStatus:
      return 0;
    case Command::kHelp:
      return 0;
  }
  return 0;
}

// Checks the number of words after the command and fills the arguments.
Status read_arguments(Command command, const std::vector<std::string_view>& words,
                      Invocation& inv) {
  const std::size_t skip = command == Command::kClusterJoin ? 2 : 1;
  const std::size_t wanted = argument_count(command);
  const std::size_t got = words.size() - skip;
  if (got != wanted) {
    return usage(fmt::format("{} argument{} given, {} expected; usage: {}", got,
                             got == 1 ? "" : "s", wanted, command_usage(command)));
  }
  if (command == Command::kClusterJoin) {
    auto id = server::parse_node_id(words[2]);
    if (!id.is_ok()) return bad_value("ID", words[2], id.status().message());
    auto address = server::parse_host_port(words[3]);
    if (!address.is_ok()) return bad_value("ADDRESS", words[3], address.status().message());
    inv.join_id = id->str();
    inv.join_address = address->to_string();
    return Status::ok();
  }
  if (wanted == 0) return Status::ok();
  inv.key = std::string(words[1]);
  if (inv.key.empty()) return usage("the key is empty; a key is 1 to 1024 bytes");
  if (command == Command::kPut) {
    inv.value_from_stdin = words[2] == "-";
    if (!inv.value_from_stdin) inv.value = std::string(words[2]);
  }
  return Status::ok();
}

Status apply_command_options(const Options& options, Invocation& inv) {
  for (const auto& [name, text] : options.values) {
    if (name == "--ttl") {
      if (inv.command != Command::kPut) return usage("--ttl applies to put only");
      auto ttl = server::parse_bounded_uint(text, 1, kMaxTtlSeconds);
      if (!ttl.is_ok()) return bad_value(name, text, ttl.status().message());
      inv.ttl_s = *ttl;
    } else if (name == "--if-version") {
      if (inv.command != Command::kPut && inv.command != Command::kDel) {
        return usage("--if-version applies to put and del only");
      }
      auto version = server::parse_bounded_uint(text, 0, ~std::uint64_t{0});
      if (!version.is_ok()) return bad_value(name, text, version.status().message());
      inv.if_version = *version;
    } else if (name == "--consistency") {
      if (inv.command != Command::kGet) return usage("--consistency applies to get only");
      if (text != "linearizable" && text != "lease" && text != "stale") {
        return bad_value(name, text, "expected linearizable, lease or stale");
      }
      inv.consistency = text;
    }
  }
  return Status::ok();
}

}  // namespace

Result<Invocation> parse_ctl_args(int argc, const char* const* argv, const EnvLookup& env) {
  Options options;
  std::vector<std::string_view> words;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      words.push_back(arg);  // "-" (stdin) and "" are words too
    } else if (arg == "--") {
      options_done = true;
    } else {
      NN_RETURN_IF_ERROR(read_option(argc, argv, i, options));
    }
  }
  Invocation inv;
  if (options.help) return inv;  // kHelp, whatever else was said
  NN_RETURN_IF_ERROR(apply_globals(options, env, inv));
  NN_ASSIGN_OR_RETURN(inv.command, command_of(words));
  NN_RETURN_IF_ERROR(read_arguments(inv.command, words, inv));
  NN_RETURN_IF_ERROR(apply_command_options(options, inv));
  return inv;
}

std::string ctl_help() {
  return R"(Usage: nodenomadctl [OPTIONS] COMMAND [ARGS]

Talks to a NodeNomad cluster over its HTTP API. Any node serves any request.

Commands:
  put KEY VALUE [--ttl SECONDS] [--if-version N]
        write VALUE (- reads it from stdin); --if-version 0: only if absent
  get KEY [--consistency linearizable|lease|stale]
        print the value, as raw bytes, to stdout
  del KEY [--if-version N]
        delete the key
  status
        tables of the cluster's nodes and shards
  cluster join ID HOST:PORT
        add node ID, reachable at HOST:PORT, to the cluster

Options (before or after the command; -- ends them):
  --endpoint HOST:PORT  the node to ask (default: $NODENOMAD_ENDPOINT, else
                        127.0.0.1:3000)
  --json                print machine-readable JSON on stdout, errors included
  --timeout-ms N        give up after N ms (default 10000)
  -v, --verbose         get: also print the version (and TTL) to stderr
  -h, --help            this text

Exit codes:
  0  ok
  1  not found (get or del of a missing key)
  2  usage error (also the server's 400 and 413: the request was invalid)
  3  version mismatch (--if-version did not match)
  4  unavailable: not applied, safe to retry (503)
  5  outcome unknown: timeout after the request was sent (504 or no answer)
  6  cannot connect: nothing was sent
  7  any other error
)";
}

}  // namespace nodenomad::ctl
