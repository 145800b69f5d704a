// SimResult's JSON line and human report.
#include <fmt/format.h>

#include "nodenomad/testing/simulator.hpp"
#include "testing/sim_support.hpp"

namespace nodenomad::testing {
namespace {

using sim_support::json_string;

std::string stats_json(const SimStats& s) {
  return fmt::format(
      "{{\"steps\":{},\"simulated_ms\":{},\"messages_sent\":{},\"messages_delivered\":{},"
      "\"messages_dropped\":{},\"messages_duplicated\":{},\"crashes\":{},\"torn_crashes\":{},"
      "\"crashes_mid_write\":{},\"disk_faults\":{},\"partitions\":{},\"clogs\":{},"
      "\"transfers\":{},\"conf_changes\":{},\"rejoins\":{},\"leaders_elected\":{},\"max_term\":{},"
      "\"max_commit\":{},\"compactions\":{},\"snapshots_installed\":{},\"ops_ok\":{},"
      "\"ops_fail\":{},\"ops_unknown\":{},\"checker_states\":{}}}",
      s.steps, s.simulated_ms, s.messages_sent, s.messages_delivered, s.messages_dropped,
      s.messages_duplicated, s.crashes, s.torn_crashes, s.crashes_mid_write, s.disk_faults,
      s.partitions, s.clogs, s.transfers, s.conf_changes, s.rejoins, s.leaders_elected, s.max_term,
      s.max_commit, s.compactions, s.snapshots_installed, s.ops_ok, s.ops_fail, s.ops_unknown,
      s.checker_states);
}

}  // namespace

std::string SimResult::to_json() const {
  std::string out = fmt::format(
      "{{\"seed\":{},\"nodes\":{},\"passed\":{},\"verdict\":{},\"trace_hash\":\"{:016x}\","
      "\"faults\":{},\"raft\":{},\"stats\":{}",
      seed, node_count, passed, json_string(verdict_name(verdict)), trace_hash,
      json_string(fault_summary), json_string(raft_summary), stats_json(stats));
  if (stopped) out += ",\"stopped\":true";
  if (!passed) {
    out += ",\"failure\":" + json_string(failure) +
           ",\"trace\":" + sim_support::json_strings(trace_tail);
  }
  return out + "}";
}

std::string SimResult::report() const {
  std::string out = fmt::format(
      "simulation seed {} ({} nodes): {}\n  faults: {}\n  raft: {}\n  {} steps, {} ms simulated, "
      "ops ok {} fail {} unknown {}, verdict {}, trace hash {:016x}{}\n",
      seed, node_count, passed ? "passed" : "FAILED", fault_summary, raft_summary, stats.steps,
      stats.simulated_ms, stats.ops_ok, stats.ops_fail, stats.ops_unknown, verdict_name(verdict),
      trace_hash, stopped ? ", stopped early by the host" : "");
  if (passed) return out;
  return out + sim_support::failure_report(
                   failure,
                   fmt::format("sim_soak --seed {} --nodes {} --trace (the same seed and options "
                               "replay this run exactly)",
                               seed, node_count),
                   trace_tail);
}

}  // namespace nodenomad::testing
