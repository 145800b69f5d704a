// ClusterSimResult's JSON line and human report.
#include <fmt/format.h>

#include "nodenomad/testing/cluster_simulator.hpp"

namespace nodenomad::testing {
namespace {

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

std::string stats_json(const ClusterSimStats& s) {
  return fmt::format(
      "{{\"steps\":{},\"simulated_ms\":{},\"settle_ms\":{},\"messages_sent\":{},"
      "\"messages_delivered\":{},\"messages_dropped\":{},\"messages_duplicated\":{},"
      "\"crashes\":{},\"stage_kills\":{},\"fail_stops\":{},\"disk_faults\":{},\"partitions\":{},"
      "\"admin_calls\":{},\"migrations\":{},\"migrations_done\":{},\"migrations_failed\":{},"
      "\"migrations_cancelled\":{},\"views_checked\":{},\"shards_compared\":{},\"ops_ok\":{},"
      "\"ops_fail\":{},\"ops_unknown\":{},\"checker_states\":{}}}",
      s.steps, s.simulated_ms, s.settle_ms, s.messages_sent, s.messages_delivered,
      s.messages_dropped, s.messages_duplicated, s.crashes, s.stage_kills, s.fail_stops,
      s.disk_faults, s.partitions, s.admin_calls, s.migrations, s.migrations_done,
      s.migrations_failed, s.migrations_cancelled, s.views_checked, s.shards_compared, s.ops_ok,
      s.ops_fail, s.ops_unknown, s.checker_states);
}

}  // namespace

std::string ClusterSimResult::to_json() const {
  std::string out = fmt::format(
      "{{\"seed\":{},\"nodes\":{},\"shards\":{},\"passed\":{},\"verdict\":{},"
      "\"trace_hash\":\"{:016x}\",\"faults\":{},\"scenario\":{},\"kills\":{},\"stats\":{}",
      seed, node_count, shard_count, passed, json_string(verdict_name(verdict)), trace_hash,
      json_string(fault_summary), json_string(scenario_summary), json_strings(kills_fired),
      stats_json(stats));
  if (!passed) out += ",\"failure\":" + json_string(failure) + ",\"trace\":" + json_strings(trace_tail);
  return out + "}";
}

std::string ClusterSimResult::report() const {
  std::string out = fmt::format(
      "cluster simulation seed {} ({} nodes, {} shards): {}\n  faults: {}\n  scenario: {}\n"
      "  {} steps, {} ms simulated (settled in {} ms), {} messages, {} crashes ({} stage kills, "
      "{} fail-stops)\n  migrations {} (done {}, failed {}, cancelled {}), ops ok {} fail {} "
      "unknown {}, verdict {}, trace hash {:016x}\n",
      seed, node_count, shard_count, passed ? "passed" : "FAILED", fault_summary,
      scenario_summary, stats.steps, stats.simulated_ms, stats.settle_ms, stats.messages_sent,
      stats.crashes, stats.stage_kills, stats.fail_stops, stats.migrations, stats.migrations_done,
      stats.migrations_failed, stats.migrations_cancelled, stats.ops_ok, stats.ops_fail,
      stats.ops_unknown, verdict_name(verdict), trace_hash);
  for (const std::string& k : kills_fired) out += "  killed: " + k + "\n";
  if (passed) return out;
  out += fmt::format(
      "  failure: {}\n  replay: cluster_sim_soak --seed {} --trace (the same seed replays this "
      "run exactly)\n  last {} events:\n",
      failure, seed, trace_tail.size());
  for (const std::string& line : trace_tail) out += "    " + line + "\n";
  return out;
}

}  // namespace nodenomad::testing
