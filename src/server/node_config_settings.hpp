// The table of NodeConfig settings: one row per setting, read by the loader
// (parse and apply), by --help (documentation) and by describe_node_config
// (display). Adding a setting is adding a row.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/server/node_config.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::server {

struct SettingSpec {
  std::string_view name;          // the environment variable and file key
  std::string_view value_name;    // in --help: "SIZE", "ID", "HOST:PORT"
  std::string_view default_text;  // in --help
  std::string_view help;          // one sentence for --help
  // Parses `text` into its field of `config`. The error message says what is
  // wrong and the accepted form; the caller adds the name and the source.
  Status (*apply)(std::string_view text, NodeConfig& config);
  // The field in the accepted form (describe_node_config).
  std::string (*show)(const NodeConfig& config);
};

std::span<const SettingSpec> node_settings();
std::vector<std::string_view> node_setting_names();

}  // namespace nodenomad::server
