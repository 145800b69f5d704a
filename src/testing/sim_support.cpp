#include "testing/sim_support.hpp"

namespace nodenomad::sim_support {

double uniform_double(Rng& rng, double lo, double hi) { return lo + (hi - lo) * rng.next_double(); }

std::uint32_t uniform_u32(Rng& rng, std::uint32_t lo, std::uint32_t hi) {
  return static_cast<std::uint32_t>(rng.uniform_in(lo, hi));
}

std::uint32_t weight_or_off(Rng& rng, std::uint32_t weight) {
  return rng.chance(0.8) ? weight : 0u;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_strings(const std::vector<std::string>& lines) {
  std::string out = "[";
  for (std::size_t i = 0; i < lines.size(); ++i) out += (i > 0 ? "," : "") + json_string(lines[i]);
  return out + "]";
}

std::string failure_report(std::string_view failure, std::string_view replay,
                           const std::vector<std::string>& trace_tail) {
  std::string out = fmt::format("  failure: {}\n  replay: {}\n  last {} events:\n", failure, replay,
                                trace_tail.size());
  for (const std::string& line : trace_tail) out += "    " + line + "\n";
  return out;
}

}  // namespace nodenomad::sim_support
