// Where a setting's text comes from: the command line, the environment or a
// config file. These functions only collect "NAME -> text, and where it was
// found"; node_config.cpp parses the texts and applies the precedence.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/server/node_config.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::server {

enum class SettingSource { kFlag, kEnv, kFile };

struct RawSetting {
  std::string text;
  SettingSource source = SettingSource::kFlag;
  std::string location;  // kFile: "nn.conf line 3"; empty otherwise
};

// Setting name (the environment variable's) -> its text in one source.
using RawSettings = std::map<std::string, RawSetting, std::less<>>;

// The flag spelling of a setting: "MAX_WAL_SIZE" -> "--max-wal-size".
std::string flag_for(std::string_view setting_name);

// The name of the variable that names the config file, and its flag.
inline constexpr std::string_view kConfigFileSetting = "CONFIG_FILE";
inline constexpr std::string_view kConfigFileFlag = "--config";

struct CommandLine {
  RawSettings settings;
  std::optional<std::string> config_path;  // --config
};

// Reads "--name VALUE" and "--name=VALUE" for every known setting, and
// --config. Errors: an unknown flag (with the known spelling when only case
// or '_' differ), a flag without a value, a flag given twice, a positional
// argument. --help and -h are skipped (the caller handles them first).
Result<CommandLine> read_command_line(int argc, const char* const* argv,
                                      const std::vector<std::string_view>& known_names);

// Every known setting set to a non-empty value in the environment.
RawSettings read_environment(const EnvLookup& env,
                             const std::vector<std::string_view>& known_names);

// Reads a config file of "KEY=value" lines: blank lines and lines starting
// with '#' are skipped, an "export " prefix is allowed, a value may be wrapped
// in one pair of matching quotes (which are removed, nothing is unescaped).
// Errors: an unreadable or over-large file, a line that is not KEY=value, an
// unknown key, a key set twice, CONFIG_FILE inside the file.
Result<RawSettings> read_config_file(const std::string& path,
                                     const std::vector<std::string_view>& known_names);

}  // namespace nodenomad::server
