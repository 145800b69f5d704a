#include "server/config_sources.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "nodenomad/file_system.hpp"
#include "server/config_values.hpp"

namespace nodenomad::server {
namespace {

// A config file is a handful of lines; anything bigger is the wrong file.
constexpr std::uint64_t kMaxConfigFileBytes = 1u << 20;

bool is_known(const std::vector<std::string_view>& known, std::string_view name) {
  return std::find(known.begin(), known.end(), name) != known.end();
}

// Spellings that differ only in case or '_' for '-' are almost certainly the
// same setting: say which one.
std::string normalize(std::string_view name) {
  std::string out;
  for (const char c : name) {
    out += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string unknown_flag_message(std::string_view flag,
                                 const std::vector<std::string_view>& known) {
  const std::string wanted = normalize(flag);
  for (const auto name : known) {
    if (normalize(flag_for(name)) == wanted) {
      return fmt::format("unknown flag {}; did you mean {}?", flag, flag_for(name));
    }
  }
  return fmt::format("unknown flag {}; see --help for the settings", flag);
}

// The setting a flag spells, or empty when none does.
std::string_view setting_of_flag(std::string_view flag,
                                 const std::vector<std::string_view>& known) {
  for (const auto name : known) {
    if (flag_for(name) == flag) return name;
  }
  return {};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view unquote(std::string_view value) {
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    return value.substr(1, value.size() - 2);
  }
  return value;
}

struct FileLine {
  std::string_view key;
  std::string_view value;
};

// Splits one non-blank, non-comment line; the reason when it is not KEY=value.
std::optional<std::string> split_line(std::string_view line, FileLine& out) {
  if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
  const auto eq = line.find('=');
  if (eq == std::string_view::npos || trim(line.substr(0, eq)).empty()) {
    return "expected KEY=value, a # comment or a blank line";
  }
  out.key = trim(line.substr(0, eq));
  out.value = unquote(trim(line.substr(eq + 1)));
  return std::nullopt;
}

Status add_file_line(std::string_view line, const std::string& where, RawSettings& out,
                     const std::vector<std::string_view>& known) {
  FileLine parsed;
  if (auto why = split_line(line, parsed)) {
    return Status::invalid_argument(fmt::format("{}: {}", where, *why));
  }
  if (parsed.key == kConfigFileSetting) {
    return Status::invalid_argument(
        fmt::format("{}: CONFIG_FILE cannot be set inside a config file", where));
  }
  if (!is_known(known, parsed.key)) {
    return Status::invalid_argument(
        fmt::format("{}: unknown setting {}; see --help for the settings", where,
                    quote_for_message(parsed.key)));
  }
  const auto it = out.find(parsed.key);
  if (it != out.end()) {
    return Status::invalid_argument(
        fmt::format("{}: {} set twice (first at {})", where, parsed.key, it->second.location));
  }
  out.emplace(std::string(parsed.key),
              RawSetting{std::string(parsed.value), SettingSource::kFile, where});
  return Status::ok();
}

// One flag at argv[i]: fills name and value, advancing i past a separate value.
struct FlagRead {
  std::string_view flag;
  std::string_view value;
};

Result<FlagRead> read_flag(int argc, const char* const* argv, int& i) {
  const std::string_view arg = argv[i];
  if (arg.substr(0, 2) != "--" || arg.size() == 2) {
    return Status::invalid_argument(
        fmt::format("unexpected argument {}; settings are given as --name VALUE (see --help)",
                    quote_for_message(arg)));
  }
  const auto eq = arg.find('=');
  if (eq != std::string_view::npos) return FlagRead{arg.substr(0, eq), arg.substr(eq + 1)};
  // A following "--flag" means this one's value was forgotten; a value that
  // merely starts with '-' ("-1") is passed on for a precise message.
  if (i + 1 >= argc || std::string_view(argv[i + 1]).substr(0, 2) == "--") {
    return Status::invalid_argument(fmt::format("{} needs a value; see --help", arg));
  }
  ++i;
  return FlagRead{arg, argv[i]};
}

}  // namespace

std::string flag_for(std::string_view setting_name) {
  std::string out = "--";
  for (const char c : setting_name) {
    out += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<CommandLine> read_command_line(int argc, const char* const* argv,
                                      const std::vector<std::string_view>& known_names) {
  CommandLine out;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") continue;
    NN_ASSIGN_OR_RETURN(const FlagRead flag, read_flag(argc, argv, i));
    if (flag.flag == kConfigFileFlag) {
      if (out.config_path) {
        return Status::invalid_argument("--config given twice");
      }
      out.config_path = std::string(flag.value);
      continue;
    }
    const std::string_view name = setting_of_flag(flag.flag, known_names);
    if (name.empty()) return Status::invalid_argument(unknown_flag_message(flag.flag, known_names));
    if (out.settings.count(name) != 0) {
      return Status::invalid_argument(fmt::format("{} given twice", flag.flag));
    }
    out.settings.emplace(std::string(name),
                         RawSetting{std::string(flag.value), SettingSource::kFlag, {}});
  }
  return out;
}

RawSettings read_environment(const EnvLookup& env,
                             const std::vector<std::string_view>& known_names) {
  RawSettings out;
  for (const auto name : known_names) {
    auto value = env(std::string(name));
    if (value && !value->empty()) {
      out.emplace(std::string(name), RawSetting{std::move(*value), SettingSource::kEnv, {}});
    }
  }
  return out;
}

Result<RawSettings> read_config_file(const std::string& path,
                                     const std::vector<std::string_view>& known_names) {
  auto& fs = PosixFileSystem::instance();
  auto size = fs.file_size(path);
  if (size.is_ok() && *size > kMaxConfigFileBytes) {
    return Status::invalid_argument(
        fmt::format("config file {} is larger than {}; is it the right file?", path,
                    format_size_bytes(kMaxConfigFileBytes)));
  }
  auto text = read_whole_file(fs, path);
  if (!text.is_ok()) {
    return Status::invalid_argument(
        fmt::format("cannot read config file {}: {}", path, text.status().to_string()));
  }
  RawSettings out;
  std::string_view rest = *text;
  for (std::size_t line_number = 1; !rest.empty(); ++line_number) {
    const auto newline = rest.find('\n');
    const std::string_view line = trim(rest.substr(0, newline));
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (line.empty() || line.front() == '#') continue;
    NN_RETURN_IF_ERROR(
        add_file_line(line, fmt::format("{} line {}", path, line_number), out, known_names));
  }
  return out;
}

}  // namespace nodenomad::server
