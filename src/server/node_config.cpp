#include "nodenomad/server/node_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <utility>

#include "server/config_sources.hpp"
#include "server/config_values.hpp"
#include "server/node_config_settings.hpp"

namespace nodenomad {
namespace {

using server::RawSetting;
using server::RawSettings;
using server::SettingSource;
using server::SettingSpec;

// Names the setting both ways and says where the bad text came from, so the
// user can find and fix it whichever way they set it.
std::string origin_of(const SettingSpec& spec, const RawSetting& raw) {
  const std::string quoted = server::quote_for_message(raw.text);
  const std::string flag = server::flag_for(spec.name);
  switch (raw.source) {
    case SettingSource::kFlag:
      return fmt::format("{}={} (variable {})", flag, quoted, spec.name);
    case SettingSource::kEnv:
      return fmt::format("{}={} (environment; flag {})", spec.name, quoted, flag);
    case SettingSource::kFile:
      return fmt::format("{}={} ({}; flag {})", spec.name, quoted, raw.location, flag);
  }
  return std::string(spec.name);
}

// The precedence: flag, then environment, then file.
const RawSetting* pick(std::string_view name, const RawSettings& flags, const RawSettings& env,
                       const RawSettings& file) {
  for (const RawSettings* source : {&flags, &env, &file}) {
    const auto it = source->find(name);
    if (it != source->end()) return &it->second;
  }
  return nullptr;
}

std::string member_ids(const std::vector<ClusterMember>& members) {
  std::string out;
  for (const auto& m : members) out += (out.empty() ? "" : ", ") + m.id.str();
  return out;
}

bool is_wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// Fills the defaults that depend on other settings and checks the settings
// against each other. `given` holds the names set by any source.
Status complete_node_config(const std::set<std::string_view>& given, NodeConfig& config) {
  const bool port_given = given.count("NODE_PORT") != 0;
  const bool bind_given = given.count("BIND_HOST") != 0;
  if (given.count("CLUSTER_NODES") == 0) {
    if (!bind_given && config.join) config.bind_host = "0.0.0.0";
    if (!config.join) {
      // A lone node: peers (none yet) would reach it where it listens.
      const std::string host = is_wildcard(config.bind_host) ? "127.0.0.1" : config.bind_host;
      config.cluster_nodes = {ClusterMember{config.node_id, host, config.node_port}};
    }
  } else if (const ClusterMember* self = config.self()) {
    if (port_given && config.node_port != self->port) {
      return Status::invalid_argument(fmt::format(
          "NODE_PORT={} (--node-port) disagrees with this node's CLUSTER_NODES entry {}@{}; "
          "give the same port in both, or leave NODE_PORT unset",
          config.node_port, self->id.str(), self->address()));
    }
    config.node_port = self->port;
    if (!bind_given) config.bind_host = self->host;
  } else if (!config.join) {
    return Status::invalid_argument(
        fmt::format("NODE_ID={} (--node-id) is not in CLUSTER_NODES ({}); add it as {}@host:port, "
                    "or set JOIN (--join) to join a running cluster",
                    config.node_id.str(), member_ids(config.cluster_nodes), config.node_id.str()));
  } else if (!bind_given) {
    config.bind_host = "0.0.0.0";
  }
  if (config.join && config.self() != nullptr &&
      config.join->to_string() == config.self()->address()) {
    return Status::invalid_argument(fmt::format(
        "JOIN={} (--join) is this node's own address; give the address of a running member",
        config.join->to_string()));
  }
  if (given.count("DATA_DIR") == 0) config.data_dir = "data/" + config.node_id.str();
  if (given.count("WAL_DIR") == 0) config.wal_dir = config.data_dir + "/wal";
  return Status::ok();
}

// The config file named by --config, else by CONFIG_FILE; none when neither.
Result<RawSettings> read_named_config_file(const std::optional<std::string>& flag_path,
                                           const EnvLookup& env,
                                           const std::vector<std::string_view>& names) {
  std::optional<std::string> path = flag_path;
  if (!path) {
    auto from_env = env(std::string(server::kConfigFileSetting));
    if (from_env && !from_env->empty()) path = std::move(from_env);
  }
  if (!path) return RawSettings{};
  if (path->empty()) {
    return Status::invalid_argument("--config=\"\" (variable CONFIG_FILE): expected a file path");
  }
  return server::read_config_file(*path, names);
}

}  // namespace

const ClusterMember* NodeConfig::self() const {
  const auto it = std::find_if(cluster_nodes.begin(), cluster_nodes.end(),
                               [&](const ClusterMember& m) { return m.id == node_id; });
  return it == cluster_nodes.end() ? nullptr : &*it;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

EnvLookup env_from_map(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

bool node_config_help_requested(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return true;
  }
  return false;
}

std::string node_config_help(std::string_view program_name) {
  std::string out = fmt::format(
      "Usage: {} [--config FILE] [--SETTING VALUE]...\n"
      "\n"
      "Runs one NodeNomad node. Every setting is a flag, an environment variable\n"
      "and a key of the config file (KEY=value lines, # comments). A flag wins\n"
      "over the environment, which wins over the file, which wins over the default.\n"
      "Sizes take B, KB, MB, GB, TB (1KB = 1024 bytes); durations ms, s, m, h.\n"
      "\n"
      "  --config FILE  (CONFIG_FILE)\n"
      "      a file of KEY=value settings\n",
      program_name);
  for (const SettingSpec& spec : server::node_settings()) {
    out += fmt::format("  {} {}  ({}, default: {})\n      {}\n", server::flag_for(spec.name),
                       spec.value_name, spec.name, spec.default_text, spec.help);
  }
  out += "  --help\n      this text\n\nSee docs/configuration.md for every setting.\n";
  return out;
}

Result<NodeConfig> load_node_config(int argc, const char* const* argv, const EnvLookup& env) {
  const std::vector<std::string_view> names = server::node_setting_names();
  NN_ASSIGN_OR_RETURN(const server::CommandLine cli, server::read_command_line(argc, argv, names));
  const RawSettings env_settings = server::read_environment(env, names);
  NN_ASSIGN_OR_RETURN(const RawSettings file_settings,
                      read_named_config_file(cli.config_path, env, names));

  NodeConfig config;
  std::set<std::string_view> given;
  for (const SettingSpec& spec : server::node_settings()) {
    const RawSetting* raw = pick(spec.name, cli.settings, env_settings, file_settings);
    if (raw == nullptr) continue;
    const Status applied = spec.apply(raw->text, config);
    if (!applied.is_ok()) {
      return Status::invalid_argument(
          fmt::format("{}: {}", origin_of(spec, *raw), applied.message()));
    }
    given.insert(spec.name);
  }
  NN_RETURN_IF_ERROR(complete_node_config(given, config));
  return config;
}

std::vector<std::string> describe_node_config(const NodeConfig& config) {
  std::vector<std::string> lines;
  for (const SettingSpec& spec : server::node_settings()) {
    const std::string value = spec.show(config);
    if (!value.empty()) lines.push_back(fmt::format("{}={}", spec.name, value));
  }
  return lines;
}

}  // namespace nodenomad
