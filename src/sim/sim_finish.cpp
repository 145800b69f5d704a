// Simulator: the end of a run. Every fault is healed, the cluster must
// converge, every replica must hold the same data, and the clients' history
// must be linearizable.
#include <fmt/format.h>

#include "sim/sim_config.hpp"
#include "sim/simulator_impl.hpp"

namespace nodenomad::sim {

namespace {

std::string join_ids(const std::vector<NodeId>& ids) {
  std::string out;
  for (const NodeId& id : ids) out += (out.empty() ? "" : ",") + id.str();
  return "{" + out + "}";
}

}  // namespace

// One line per node: role, term, log and configuration, for a liveness
// failure's report.
std::string Simulator::describe_nodes() const {
  std::string out;
  for (const auto& node : nodes_) {
    const RaftEngine* e = node->engine();
    if (e == nullptr) {
      out += fmt::format("\n  {}: down", node->id().str());
      continue;
    }
    const ConfState conf = e->conf_state();
    const Result<Term> last_term = e->term_at(e->last_index());
    out += fmt::format(
        "\n  {}: {} term {} leader {} commit {} applied {} log [{}, {}] last term {} voters {} "
        "outgoing {} learners {} learners_next {}",
        node->id().str(), raft_role_name(e->role()), e->term().value(),
        e->leader().empty() ? "-" : e->leader().str(), e->commit_index().value(),
        e->applied_index().value(), e->first_index().value(), e->last_index().value(),
        last_term.is_ok() ? last_term->value() : 0, join_ids(conf.voters),
        join_ids(conf.voters_outgoing), join_ids(conf.learners), join_ids(conf.learners_next));
  }
  return out;
}

void Simulator::heal_everything() {
  faults_on_ = false;
  NetworkParams quiet = network_->params();
  quiet.drop_probability = 0;
  quiet.duplicate_probability = 0;
  quiet.long_delay_probability = 0;
  network_->set_params(quiet);
  network_->heal();
  clog_order_.clear();
  clients_->stop_issuing();
  note(TraceCode::kFault, 0, "every fault healed; clients finish their operations");
  for (auto& node : nodes_) restart_node(node->index());
}

// A leader of the newest term has committed an entry of its own term, and
// every node runs, holds no unfinished write and has applied exactly that
// commit; no client operation is open.
bool Simulator::converged() const {
  const std::optional<std::uint32_t> l = leader();
  if (!l) return false;
  const RaftEngine& leader_engine = *nodes_[*l]->engine();
  const LogIndex commit = leader_engine.commit_index();
  const Result<Term> commit_term = leader_engine.term_at(commit);
  if (!commit_term.is_ok() || *commit_term != leader_engine.term()) return false;
  for (const auto& node : nodes_) {
    const RaftEngine* e = node->engine();
    if (e == nullptr || node->write_in_flight() || e->term() > leader_engine.term()) return false;
    if (e->commit_index() != commit || e->applied_index() != commit) return false;
  }
  return clients_->idle();
}

Status Simulator::check_same_state() {
  const WallTime now{std::chrono::milliseconds{kSimEpochMs + static_cast<std::int64_t>(now_ / 1000)}};
  const StorageEngine& reference = *nodes_[0]->storage();
  const StorageStats ref_stats = reference.stats();
  for (const auto& node : nodes_) {
    const StorageEngine& storage = *node->storage();
    const StorageStats stats = storage.stats();
    if (stats.keys != ref_stats.keys || stats.version_floor != ref_stats.version_floor ||
        stats.last_applied != ref_stats.last_applied) {
      return Status::failed(fmt::format(
          "replicas differ: n1 has {} keys, floor {}, applied {}; {} has {} keys, floor {}, "
          "applied {}",
          ref_stats.keys, ref_stats.version_floor, ref_stats.last_applied.value(),
          node->id().str(), stats.keys, stats.version_floor, stats.last_applied.value()));
    }
    for (const std::string& key : workload_->keys()) {
      const Result<ReadResult> a = reference.get(key, now);
      const Result<ReadResult> b = storage.get(key, now);
      const bool same = a.is_ok() == b.is_ok() &&
                        (!a.is_ok() || (a->value == b->value && a->version == b->version));
      if (!same) {
        return Status::failed(fmt::format(
            "replicas differ on key {}: n1 {} v{}, {} {} v{}", key,
            a.is_ok() ? a->value : "<absent>", a.is_ok() ? a->version : 0, node->id().str(),
            b.is_ok() ? b->value : "<absent>", b.is_ok() ? b->version : 0));
      }
    }
  }
  return Status::ok();
}

void Simulator::check_history() {
  const testing::History history = clients_->history();
  testing::CheckOptions check;
  check.max_states_per_key = options_.checker_max_states_per_key;
  Result<testing::CheckResult> checked = testing::check_linearizability(history, check);
  if (!checked.is_ok()) {
    violation(checked.status().with_context("the recorded history is malformed"));
    return;
  }
  verdict_ = checked->verdict;
  stats_.checker_states = checked->states_explored;
  if (verdict_ == testing::Verdict::kIllegal) {
    violation(Status::failed("linearizability: " + checked->explanation));
    return;
  }
  // A run the host stopped early is not finished: the workload's final
  // check would judge a history cut short (SimControl::stop()).
  if (stopped_) return;
  const Status app = workload_->check_final(history);
  if (!app.is_ok()) violation(app.with_context("the workload's final check"));
}

testing::SimResult Simulator::result() {
  testing::SimResult r;
  r.seed = options_.seed;
  r.node_count = options_.node_count;
  r.passed = failure_.is_ok();
  r.stopped = stopped_;
  if (!r.passed) r.failure = failure_.to_string();
  r.verdict = verdict_;
  r.trace_hash = trace_.hash();
  r.trace_tail = trace_.tail();
  r.fault_summary = profile_.describe();
  r.raft_summary = describe_raft_config(raft_config_);
  r.stats = stats_;
  r.stats.simulated_ms = now_ / kMicrosPerMilli;
  r.stats.leaders_elected = leaders_seen_.size();
  if (clients_ != nullptr) {
    r.stats.ops_ok = clients_->counters().ok;
    r.stats.ops_fail = clients_->counters().fail;
    r.stats.ops_unknown = clients_->counters().unknown;
  }
  for (const auto& node : nodes_) {
    r.stats.compactions += node->counters().compactions;
    r.stats.snapshots_installed += node->counters().snapshots_installed;
  }
  return r;
}

}  // namespace nodenomad::sim
