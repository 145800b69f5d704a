#include "nodenomad/testing/linearizability.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "checker/kv_model.hpp"
#include "checker/partition.hpp"
#include "checker/quick_checks.hpp"
#include "checker/search.hpp"
#include "nodenomad/assert.hpp"

namespace nodenomad::testing {

namespace {

using detail::KeyPartition;
using detail::SearchOutcome;

// Why a candidate could not be placed at the dead end, in words.
std::string candidate_reason(const KeyPartition& part, const detail::KeyState& state,
                             std::size_t index) {
  const detail::ModelOp& op = part.ops[index];
  detail::KeyState next;
  if (op.outcome_known) {
    const char* why = detail::step_ok(state, op, &next);
    return why != nullptr ? std::string(why) : "possible here, but no order of the rest works";
  }
  return detail::step_maybe(state, op, &next)
             ? "may take effect here, but no order of the rest works"
             : "unknown outcome; taking effect here is impossible or changes nothing";
}

IllegalKeyReport search_report(const KeyPartition& part, const SearchOutcome& outcome) {
  IllegalKeyReport report;
  report.blocked = part.ops[outcome.blocked].id;
  report.summary = fmt::format(
      "no order of the operations lets #{} take effect before it completed with its answer",
      report.blocked);
  for (const std::size_t index : outcome.best_prefix) {
    report.longest_prefix.push_back(part.ops[index].id);
  }
  report.state_after_prefix = detail::describe_state(outcome.best_state, part.values);
  for (const std::size_t index : outcome.candidates) {
    report.unplaced.push_back(part.ops[index].id);
    report.unplaced_reasons.push_back(candidate_reason(part, outcome.best_state, index));
  }
  return report;
}

KeyCheck quick_illegal(const KeyPartition& part, const detail::QuickViolation& violation) {
  KeyCheck check;
  check.key = part.key;
  check.verdict = Verdict::kIllegal;
  check.operations = part.ops.size();
  check.illegal.summary = violation.reason;
  check.illegal.blocked = part.ops[violation.op].id;
  if (violation.witness) check.illegal.witnesses.push_back(part.ops[*violation.witness].id);
  return check;
}

KeyCheck check_key(const KeyPartition& part, const detail::SearchLimits& limits) {
  if (const auto violation = detail::find_quick_violation(part)) {
    return quick_illegal(part, *violation);
  }
  const SearchOutcome outcome = detail::search_partition(part, limits);
  KeyCheck check;
  check.key = part.key;
  check.verdict = outcome.verdict;
  check.states_explored = outcome.states_explored;
  check.operations = part.ops.size();
  check.stopped_by_deadline = outcome.stopped_by_deadline;
  if (outcome.verdict == Verdict::kIllegal) check.illegal = search_report(part, outcome);
  for (const std::size_t index : outcome.linearization) {
    check.linearization.push_back(part.ops[index].id);
  }
  return check;
}

void explain_illegal(const History& history, const KeyCheck& check, std::string& out) {
  const IllegalKeyReport& report = check.illegal;
  out += fmt::format("  why: {}\n", report.summary);
  out += fmt::format("    {}\n", to_string(history.operation(report.blocked)));
  for (const OpId witness : report.witnesses) {
    out += fmt::format("    {}\n", to_string(history.operation(witness)));
  }
  if (report.state_after_prefix.empty()) return;  // a direct rule: nothing searched
  const std::vector<OpId>& prefix = report.longest_prefix;
  const std::size_t shown = std::min(prefix.size(), kMaxExplainedOperations);
  out += fmt::format("  longest linearizable prefix: {} operations{}\n", prefix.size(),
                     shown < prefix.size() ? fmt::format(", the last {}:", shown) : ":");
  for (std::size_t i = prefix.size() - shown; i < prefix.size(); ++i) {
    out += fmt::format("    {}\n", to_string(history.operation(prefix[i])));
  }
  out += fmt::format("  state after it: {}\n", report.state_after_prefix);
  out += "  candidates at that point:\n";
  for (std::size_t i = 0; i < report.unplaced.size() && i < kMaxExplainedOperations; ++i) {
    out += fmt::format("    {}: {}\n", to_string(history.operation(report.unplaced[i])),
                       report.unplaced_reasons[i]);
  }
  if (report.unplaced.size() > kMaxExplainedOperations) {
    out += fmt::format("    ... and {} more\n", report.unplaced.size() - kMaxExplainedOperations);
  }
}

std::string explain(const History& history, const CheckResult& result) {
  std::string out =
      fmt::format("linearizability: {} ({} keys, {} states explored)\n",
                  verdict_name(result.verdict), result.keys.size(), result.states_explored);
  for (const KeyCheck& check : result.keys) {
    if (check.verdict == Verdict::kOk) continue;
    out += fmt::format("key {}: {}, {} operations, {} states explored", printable_bytes(check.key),
                       verdict_name(check.verdict), check.operations, check.states_explored);
    if (check.verdict == Verdict::kUnknown) {
      out += check.stopped_by_deadline ? ": the deadline passed\n" : ": the state budget ran out\n";
      continue;
    }
    out += "\n";
    explain_illegal(history, check, out);
  }
  return out;
}

Verdict combine(Verdict a, Verdict b) {
  if (a == Verdict::kIllegal || b == Verdict::kIllegal) return Verdict::kIllegal;
  if (a == Verdict::kUnknown || b == Verdict::kUnknown) return Verdict::kUnknown;
  return Verdict::kOk;
}

}  // namespace

std::string_view verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kIllegal:
      return "illegal";
    case Verdict::kUnknown:
      return "unknown";
  }
  NN_UNREACHABLE("unknown Verdict ", static_cast<int>(verdict));
}

Result<CheckResult> check_linearizability(const History& history, const CheckOptions& options) {
  if (options.max_states_per_key == 0) {
    return Status::invalid_argument(
        "check_linearizability: max_states_per_key is 0; it must be at least 1");
  }
  NN_RETURN_IF_ERROR(history.validate());
  const detail::SearchLimits limits{options.max_states_per_key, options.clock, options.deadline};
  CheckResult result;
  for (const KeyPartition& part : detail::partition_by_key(history)) {
    KeyCheck check = check_key(part, limits);
    result.verdict = combine(result.verdict, check.verdict);
    result.states_explored += check.states_explored;
    result.keys.push_back(std::move(check));
  }
  result.explanation = explain(history, result);
  return result;
}

}  // namespace nodenomad::testing
