#include "sim_cluster/migration_driver.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace nodenomad::sim_cluster {
namespace {

constexpr SimTime kAddRetryUs = 2'000'000;
constexpr SimTime kResumeEveryUs = 500'000;
constexpr int kRebalanceAttempts = 10;

}  // namespace

MigrationDriver::MigrationDriver(Scheduler& scheduler, ClusterNodes& nodes,
                                 const ClusterInvariants& invariants, const Scenario& scenario,
                                 Rng rng, ClusterTrace& trace, bool random_calls)
    : scheduler_(scheduler),
      nodes_(nodes),
      invariants_(invariants),
      scenario_(scenario),
      rng_(rng),
      trace_(trace),
      random_calls_(random_calls),
      joined_(scenario.joiners, false),
      kill_fired_(scenario.kills.size(), false),
      kill_pending_(scenario.kills.size(), false) {}

void MigrationDriver::after(SimTime delay_us, std::function<void()> fn) {
  scheduler_.at(scheduler_.now() + delay_us, kNoOwner, std::move(fn));
}

void MigrationDriver::trace_answer(const std::string& what, const Status& status) {
  trace_.note(scheduler_.now(), fmt::format("{} -> {}", what, status.to_string()));
}

std::vector<std::uint32_t> MigrationDriver::live_nodes() const {
  std::vector<std::uint32_t> live;
  for (std::uint32_t i = 0; i < nodes_.count(); ++i) {
    if (nodes_.up(i)) live.push_back(i);
  }
  return live;
}

Node* MigrationDriver::random_live_node() {
  const std::vector<std::uint32_t> live = live_nodes();
  if (live.empty()) return nullptr;
  return nodes_.node(live[rng_.uniform(live.size())]);
}

void MigrationDriver::start(SimTime faulty_until) {
  faulty_until_ = faulty_until;
  for (std::uint32_t j = 0; j < scenario_.joiners; ++j) {
    const std::uint32_t index = kFounders + j;
    after(scenario_.join_at_ms[j] * 1000, [this, index] { join(index); });
  }
  if (random_calls_) {
    after(rng_.uniform_in(1'000'000, 3'000'000), [this] { random_call(); });
  }
}

void MigrationDriver::settle() {
  settling_ = true;
  for (std::uint32_t j = 0; j < scenario_.joiners; ++j) {
    if (!nodes_.born(kFounders + j)) join(kFounders + j);
  }
  resume_paused();
}

bool MigrationDriver::joins_done() const {
  for (bool joined : joined_) {
    if (!joined) return false;
  }
  return true;
}

// --- growing the cluster ---

void MigrationDriver::join(std::uint32_t index) {
  if (nodes_.born(index)) return;
  trace_.note(scheduler_.now(), fmt::format("{} joins", nodes_.id(index).str()));
  if (Status s = nodes_.start(index); !s.is_ok()) {
    trace_answer("start " + nodes_.id(index).str(), s);
    return;  // the end state names the missing node
  }
  add_member(index);
}

void MigrationDriver::add_member(std::uint32_t index) {
  const std::size_t j = index - kFounders;
  if (joined_[j]) return;
  after(kAddRetryUs, [this, index] { add_member(index); });  // until an OK answer
  if (!nodes_.up(index)) return;
  std::vector<std::uint32_t> members;
  for (std::uint32_t i : live_nodes()) {
    if (i != index && nodes_.node(i)->is_ready()) members.push_back(i);
  }
  if (members.empty()) return;
  Node& via = *nodes_.node(members[rng_.uniform(members.size())]);
  ++admin_calls_;
  const NodeId id = nodes_.id(index);
  const std::string what = fmt::format("add_node {} via {}", id.str(), via.node_id().str());
  trace_.note(scheduler_.now(), what);
  via.add_node(id, fmt::format("sim:{}", index + 1), [this, j, what](Status s) {
    trace_answer(what, s);
    if (!s.is_ok() || joined_[j]) return;
    joined_[j] = true;
    if (scenario_.rebalance_on_join) return;
    // The nodes do not plan on their own: ask, until a plan is answered.
    after(rng_.uniform_in(200'000, 2'000'000), [this] { rebalance_after_join(kRebalanceAttempts); });
  });
}

void MigrationDriver::rebalance_after_join(int attempts_left) {
  Node* via = random_live_node();
  if (via == nullptr || attempts_left <= 0) return;
  ++admin_calls_;
  via->rebalance([this, attempts_left](Result<MigrationBatch> r) {
    trace_answer("rebalance after the join", r.status());
    if (!r.is_ok()) after(1'000'000, [this, attempts_left] { rebalance_after_join(attempts_left - 1); });
  });
}

// --- random migration calls ---

std::vector<std::string> MigrationDriver::running_ops(bool paused_only) const {
  std::vector<std::string> out;
  for (const auto& [id, r] : invariants_.newest()) {
    if (migration_stage_terminal(r.stage)) continue;
    if (paused_only && !r.paused) continue;
    out.push_back(id);
  }
  return out;
}

void MigrationDriver::random_call() {
  if (settling_ || scheduler_.now() >= faulty_until_) return;
  after(rng_.uniform_in(scenario_.admin_min_interval_ms, scenario_.admin_max_interval_ms) * 1000,
        [this] { random_call(); });
  Node* via = random_live_node();
  if (via == nullptr) return;
  const std::uint64_t roll = rng_.uniform(100);
  if (roll < 35) return call_create(*via);
  if (roll < 45) {
    ++admin_calls_;
    const std::string what = "rebalance via " + via->node_id().str();
    trace_.note(scheduler_.now(), what);
    return via->rebalance([this, what](Result<MigrationBatch> r) {
      trace_answer(what + (r.is_ok() ? fmt::format(" ({} ops)", r->operations.size()) : ""),
                   r.status());
    });
  }
  if (roll < 50) {
    const auto view = via->metadata();
    if (drained_ || !joins_done() || !view->initialized() || view->members().size() < 4) return;
    drained_ = true;
    const NodeId victim = view->members()[rng_.uniform(view->members().size())].id;
    ++admin_calls_;
    const std::string what = fmt::format("drain {} via {}", victim.str(), via->node_id().str());
    trace_.note(scheduler_.now(), what);
    return via->drain_node(victim, [this, what](Result<MigrationBatch> r) {
      trace_answer(what, r.status());
    });
  }
  if (roll < 65) return call_control(*via, MigrationControl::kCancel);
  if (roll < 78) return call_control(*via, MigrationControl::kPause);
  if (roll < 92) return call_control(*via, MigrationControl::kResume);
  call_control(*via, MigrationControl::kSetBandwidth);
}

void MigrationDriver::call_create(Node& via) {
  const auto view = via.metadata();
  if (!view->initialized()) return;
  const ShardId shard(static_cast<std::uint32_t>(rng_.uniform(view->shard_count())));
  const ShardPlacement& p = view->shard_map().placement(shard);
  std::vector<NodeId> targets;
  for (const Member& m : view->members()) {
    if (m.state == MemberState::kActive && !p.hosts(m.id)) targets.push_back(m.id);
  }
  if (targets.empty() || p.replicas.empty()) return;
  MigrationRequest request;
  request.shards = {shard};
  request.source = p.replicas[rng_.uniform(p.replicas.size())];
  request.target = targets[rng_.uniform(targets.size())];
  if (rng_.chance(0.5)) request.bandwidth_bytes_per_s = rng_.uniform_in(2'000, 40'000);
  ++admin_calls_;
  const std::string what =
      fmt::format("create_migration shard {} {} -> {} at {} B/s via {}", shard.value(),
                  request.source.str(), request.target.str(), request.bandwidth_bytes_per_s,
                  via.node_id().str());
  trace_.note(scheduler_.now(), what);
  via.create_migration(std::move(request), [this, what](Result<MigrationBatch> r) {
    trace_answer(what + (r.is_ok() ? " " + fmt::format("{}", fmt::join(r->operations, ",")) : ""),
                 r.status());
  });
}

void MigrationDriver::call_control(Node& via, MigrationControl control) {
  const std::vector<std::string> ops = running_ops(control == MigrationControl::kResume);
  if (ops.empty()) return;
  const std::string op = ops[rng_.uniform(ops.size())];
  const std::uint64_t bandwidth =
      control == MigrationControl::kSetBandwidth ? rng_.uniform_in(2'000, 60'000) : 0;
  ++admin_calls_;
  const char* name = control == MigrationControl::kCancel  ? "cancel"
                     : control == MigrationControl::kPause ? "pause"
                     : control == MigrationControl::kResume ? "resume"
                                                            : "set_bandwidth";
  const std::string what = fmt::format("{} {} {} via {}", name, op, bandwidth, via.node_id().str());
  trace_.note(scheduler_.now(), what);
  via.control_migration(op, control, bandwidth, [this, what](Result<MigrationStatus> r) {
    trace_answer(what, r.status());
  });
}

void MigrationDriver::resume_paused() {
  after(kResumeEveryUs, [this] { resume_paused(); });
  for (const std::string& op : running_ops(true)) {
    if (Node* via = random_live_node()) {
      ++admin_calls_;
      via->control_migration(op, MigrationControl::kResume, 0, [this, op](Result<MigrationStatus> r) {
        trace_answer("resume " + op + " (settling)", r.status());
      });
    }
  }
}

// --- stage kills ---

void MigrationDriver::on_record(const node::MigrationRecord& r) {
  if (settling_ || !r.started || r.rolling_back || migration_stage_terminal(r.stage)) return;
  for (std::size_t k = 0; k < scenario_.kills.size(); ++k) {
    if (kill_fired_[k] || kill_pending_[k] || scenario_.kills[k].stage != r.stage) continue;
    kill_pending_[k] = true;
    // Not from inside the invariants' walk over the nodes: right after it.
    after(0, [this, k, r] { fire_kill(k, r); });
  }
}

void MigrationDriver::fire_kill(std::size_t plan, const node::MigrationRecord& r) {
  kill_pending_[plan] = false;
  if (settling_) return;
  const testing::StageKill& k = scenario_.kills[plan];
  int victim = -1;
  if (k.role == testing::StageKillRole::kSource) victim = nodes_.index_of(r.source);
  if (k.role == testing::StageKillRole::kTarget) victim = nodes_.index_of(r.target);
  if (k.role == testing::StageKillRole::kCoordinator) {
    Term best;
    for (std::uint32_t i : live_nodes()) {
      std::vector<NodeGroupStatus> groups;
      scheduler_.as_owner(i, [&] { groups = nodes_.node(i)->group_status(); });
      for (const NodeGroupStatus& g : groups) {
        if (g.group == kMetadataGroup && g.role == RaftRole::kLeader && g.term > best) {
          best = g.term;
          victim = static_cast<int>(i);
        }
      }
    }
  }
  if (victim < 0 || !nodes_.up(static_cast<std::uint32_t>(victim))) return;  // a later one
  kill_fired_[plan] = true;
  const std::string what =
      fmt::format("{}@{} {} {}", testing::stage_kill_role_name(k.role),
                  migration_stage_name(k.stage), r.id, nodes_.id(victim).str());
  kills_fired_.push_back(what);
  kill(static_cast<std::uint32_t>(victim), k.down_ms, "stage kill " + what);
}

}  // namespace nodenomad::sim_cluster
