// ClusterSimResult's JSON line and human report.
#include <fmt/format.h>

#include "nodenomad/testing/cluster_simulator.hpp"
#include "testing/sim_support.hpp"

namespace nodenomad::testing {
namespace {

using sim_support::json_string;
using sim_support::json_strings;

std::string stats_json(const ClusterSimStats& s) {
  return fmt::format(
      "{{\"steps\":{},\"simulated_ms\":{},\"settle_ms\":{},\"messages_sent\":{},"
      "\"messages_delivered\":{},\"messages_dropped\":{},\"messages_duplicated\":{},"
      "\"crashes\":{},\"stage_kills\":{},\"fail_stops\":{},\"disk_faults\":{},\"partitions\":{},"
      "\"admin_calls\":{},\"migrations\":{},\"migrations_done\":{},\"migrations_failed\":{},"
      "\"migrations_cancelled\":{},\"views_checked\":{},\"shards_compared\":{},\"ops_ok\":{},"
      "\"ops_fail\":{},\"ops_unknown\":{},\"checker_states\":{},\"divergences\":{},"
      "\"verify_mismatches\":{},\"migrations_done_after_repair\":{}}}",
      s.steps, s.simulated_ms, s.settle_ms, s.messages_sent, s.messages_delivered,
      s.messages_dropped, s.messages_duplicated, s.crashes, s.stage_kills, s.fail_stops,
      s.disk_faults, s.partitions, s.admin_calls, s.migrations, s.migrations_done,
      s.migrations_failed, s.migrations_cancelled, s.views_checked, s.shards_compared, s.ops_ok,
      s.ops_fail, s.ops_unknown, s.checker_states, s.divergences, s.verify_mismatches,
      s.migrations_done_after_repair);
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
  if (stats.divergences > 0) {
    out += fmt::format(
        "  {} targets diverged; Verify found {} bad buckets; {} moves done after a repair\n",
        stats.divergences, stats.verify_mismatches, stats.migrations_done_after_repair);
  }
  for (const std::string& k : kills_fired) out += "  killed: " + k + "\n";
  if (passed) return out;
  return out + sim_support::failure_report(
                   failure,
                   fmt::format("cluster_sim_soak --seed {} --trace (the same seed replays this "
                               "run exactly)",
                               seed),
                   trace_tail);
}

}  // namespace nodenomad::testing
