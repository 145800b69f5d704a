// Simulator: the nemesis (one fault action at a time, drawn by weight from
// the seed's profile), crash and restart.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "nodenomad/raft/conf_change.hpp"
#include "sim/simulator_impl.hpp"

namespace nodenomad::sim {

void Simulator::schedule_nemesis() {
  if (!faults_on_ || profile_.nemesis_max_interval_ms == 0) return;
  SimEvent e;
  e.time = now_ + fault_rng_.uniform_in(profile_.nemesis_min_interval_ms,
                                        std::max(profile_.nemesis_min_interval_ms,
                                                 profile_.nemesis_max_interval_ms)) *
                      kMicrosPerMilli;
  e.kind = EventKind::kNemesis;
  schedule(std::move(e));
}

void Simulator::on_nemesis() {
  if (!faults_on_) return;
  struct Action {
    std::uint32_t weight;
    void (Simulator::*run)();
  };
  const Action actions[] = {
      {profile_.partition_weight, &Simulator::partition_random},
      {profile_.one_way_weight, &Simulator::cut_one_way},
      {profile_.isolate_leader_weight, &Simulator::isolate_leader},
      {profile_.rolling_clog_weight, &Simulator::start_rolling_clog},
      {profile_.crash_weight, &Simulator::crash_random},
      {profile_.disk_fault_weight, &Simulator::disk_fault},
      {profile_.transfer_weight, &Simulator::transfer_leadership},
      {profile_.membership_weight, &Simulator::change_membership},
      {profile_.skew_weight, &Simulator::redraw_random_skew},
      {profile_.heal_weight, &Simulator::heal_network_now},
      {profile_.rejoin_weight, &Simulator::rejoin_member},
  };
  std::uint64_t total = 0;
  for (const Action& a : actions) total += a.weight;
  if (total > 0) {
    std::uint64_t dice = fault_rng_.uniform(total);
    for (const Action& a : actions) {
      if (dice < a.weight) {
        (this->*a.run)();
        break;
      }
      dice -= a.weight;
    }
  }
  schedule_nemesis();
}

void Simulator::schedule_heal() {
  SimEvent e;
  e.time = now_ + fault_rng_.uniform_in(profile_.fault_min_ms, profile_.fault_max_ms) *
                      kMicrosPerMilli;
  e.kind = EventKind::kNetworkHeal;
  e.arg = network_->generation();
  schedule(std::move(e));
}

void Simulator::partition_random() {
  const auto n = static_cast<std::uint32_t>(nodes_.size());
  if (n < 2) return;
  std::vector<std::uint32_t> order(n);
  for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
  for (std::uint32_t i = n - 1; i > 0; --i) {
    std::swap(order[i], order[fault_rng_.uniform(i + 1)]);
  }
  order.resize(fault_rng_.uniform_in(1, n - 1));
  network_->heal();
  network_->split(order);
  ++stats_.partitions;
  note(TraceCode::kFault, 0, "partition: " + network_->describe_cuts());
  schedule_heal();
}

void Simulator::cut_one_way() {
  const auto n = static_cast<std::uint32_t>(nodes_.size());
  if (n < 2) return;
  const std::uint64_t cuts = fault_rng_.uniform_in(1, n);
  for (std::uint64_t i = 0; i < cuts; ++i) {
    const auto from = static_cast<std::uint32_t>(fault_rng_.uniform(n));
    const auto to = static_cast<std::uint32_t>((from + fault_rng_.uniform_in(1, n - 1)) % n);
    network_->cut(from, to);
  }
  ++stats_.partitions;
  note(TraceCode::kFault, 0, "one-way cuts: " + network_->describe_cuts());
  schedule_heal();
}

void Simulator::isolate_leader() {
  const std::optional<std::uint32_t> l = leader();
  if (!l || nodes_.size() < 2) {
    partition_random();
    return;
  }
  // Added to the cuts already in place, so faults compose (a one-way cut
  // that kept a follower out of the leader's lease, then this).
  network_->split({*l});
  ++stats_.partitions;
  note(TraceCode::kFault, *l,
       fmt::format("leader n{} isolated: {}", *l + 1, network_->describe_cuts()));
  schedule_heal();
}

void Simulator::heal_network_now() {
  network_->heal();
  clog_order_.clear();
  note(TraceCode::kFault, 0, "network healed");
}

// FoundationDB's pattern: each node in turn has its traffic held back for a
// while, then released, one after the other.
void Simulator::start_rolling_clog() {
  if (!clog_order_.empty()) return;
  const auto n = static_cast<std::uint32_t>(nodes_.size());
  clog_order_.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) clog_order_[i] = i;
  for (std::uint32_t i = n - 1; i > 0; --i) {
    std::swap(clog_order_[i], clog_order_[fault_rng_.uniform(i + 1)]);
  }
  clog_step_us_ =
      fault_rng_.uniform_in(profile_.fault_min_ms, profile_.fault_max_ms) * kMicrosPerMilli / 2;
  on_clog_step(0);
}

void Simulator::on_clog_step(std::uint64_t step) {
  if (!faults_on_ || step >= clog_order_.size()) {
    clog_order_.clear();
    return;
  }
  const std::uint32_t node = clog_order_[step];
  network_->clog(node, now_ + clog_step_us_);
  ++stats_.clogs;
  note(TraceCode::kFault, node, fmt::format("n{} clogged for {} us", node + 1, clog_step_us_));
  SimEvent e;
  e.time = now_ + clog_step_us_;
  e.kind = EventKind::kClogStep;
  e.arg = step + 1;
  schedule(std::move(e));
}

std::uint32_t Simulator::down_count() const {
  std::uint32_t down = 0;
  for (const auto& node : nodes_) down += node->up() ? 0 : 1;
  return down;
}

std::optional<std::uint32_t> Simulator::leader() const {
  std::optional<std::uint32_t> best;
  Term best_term;
  for (const auto& node : nodes_) {
    const RaftEngine* e = node->engine();
    if (e != nullptr && e->role() == RaftRole::kLeader && (!best || e->term() > best_term)) {
      best = node->index();
      best_term = e->term();
    }
  }
  return best;
}

std::optional<std::uint32_t> Simulator::random_up_node(bool prefer_write_in_flight) {
  std::vector<std::uint32_t> up;
  std::vector<std::uint32_t> writing;
  for (const auto& node : nodes_) {
    if (!node->up()) continue;
    up.push_back(node->index());
    if (node->write_in_flight()) writing.push_back(node->index());
  }
  const std::vector<std::uint32_t>& pool =
      prefer_write_in_flight && !writing.empty() ? writing : up;
  if (pool.empty()) return std::nullopt;
  return pool[fault_rng_.uniform(pool.size())];
}

void Simulator::crash_random() {
  if (down_count() >= profile_.max_down_nodes) return;
  // Half the time a node with a write in flight: the moment that matters.
  const std::optional<std::uint32_t> node = random_up_node(fault_rng_.chance(0.5));
  if (!node) return;
  const bool tear = fault_rng_.chance(profile_.torn_tail_probability);
  crash_node(*node, tear, "crashed by the nemesis");
  SimEvent e;
  e.time = now_ + fault_rng_.uniform_in(profile_.down_min_ms, profile_.down_max_ms) *
                      kMicrosPerMilli;
  e.kind = EventKind::kRestart;
  e.node = *node;
  schedule(std::move(e));
}

void Simulator::crash_node(std::uint32_t index, bool tear, std::string_view why) {
  SimNode& node = *nodes_[index];
  if (!node.up()) return;
  ++stats_.crashes;
  if (tear) ++stats_.torn_crashes;
  const bool mid_write = node.write_in_flight();
  if (mid_write) ++stats_.crashes_mid_write;
  trace_.record({.time = now_, .code = TraceCode::kCrash, .node = index,
                 .note = fmt::format("{}{}{}", why, tear ? " (torn tails)" : "",
                                     mid_write ? " (write in flight)" : "")});
  node.crash(tear);
}

void Simulator::restart_node(std::uint32_t index) {
  SimNode& node = *nodes_[index];
  if (node.up()) return;
  const Status started = node.start();
  if (!started.is_ok()) {
    violation(started.with_context(fmt::format("restart of {} from its disk", node.id().str())));
    return;
  }
  invariants_.record_restart(node.id(), node.engine()->applied_index());
  trace_.record({.time = now_, .code = TraceCode::kRestart, .node = index,
                 .a = node.engine()->applied_index().value(),
                 .note = fmt::format("term {} commit {} last {}", node.engine()->term().value(),
                                     node.engine()->commit_index().value(),
                                     node.engine()->last_index().value())});
  schedule_tick(index, fault_rng_.uniform_in(1, node.tick_period_us()));
}

void Simulator::disk_fault() {
  const std::optional<std::uint32_t> node = random_up_node(false);
  if (!node) return;
  nodes_[*node]->inject_sync_failure();
  ++stats_.disk_faults;
  note(TraceCode::kFault, *node, fmt::format("n{}: its next fsync fails", *node + 1));
}

void Simulator::transfer_leadership() {
  const std::optional<std::uint32_t> l = leader();
  if (!l) return;
  SimNode& node = *nodes_[*l];
  const std::vector<NodeId> voters = node.engine()->conf_state().voters;
  if (voters.size() < 2) return;
  NodeId to = voters[fault_rng_.uniform(voters.size())];
  if (to == node.id()) return;
  const Status s = node.transfer_leadership(to);
  ++stats_.transfers;
  note(TraceCode::kFault, *l,
       fmt::format("n{} transfers leadership to {}: {}", *l + 1, to.str(), s.to_string()));
}

// Moves one node between voter and learner (simply, or jointly swapping a
// learner in and a voter out); a demotion needs three voters, so at least
// two remain.
void Simulator::change_membership() {
  const std::optional<std::uint32_t> l = leader();
  if (!l) return;
  SimNode& node = *nodes_[*l];
  const ConfState conf = node.engine()->conf_state();
  if (is_joint(conf)) return;
  ConfChange change;
  if (!conf.learners.empty()) {
    const NodeId& learner = conf.learners[fault_rng_.uniform(conf.learners.size())];
    // As the node promotes a move's target only after Verify: a member
    // wiped and added back is not promoted before it holds the state
    // (members_join_as_learners would refuse it a voter's snapshot).
    if (!holds_state(learner)) return;
    change.changes.push_back({ConfChangeType::kAddVoter, learner});
    if (fault_rng_.chance(0.5)) {
      change.transition = ConfChangeTransition::kJoint;
      const NodeId& voter = conf.voters[fault_rng_.uniform(conf.voters.size())];
      change.changes.push_back({ConfChangeType::kAddLearner, voter});
    }
  } else if (conf.voters.size() >= 3) {
    const NodeId& voter = conf.voters[fault_rng_.uniform(conf.voters.size())];
    change.changes.push_back({ConfChangeType::kAddLearner, voter});
  } else {
    return;
  }
  const Result<ProposeResult> proposed = node.propose_conf_change(change);
  ++stats_.conf_changes;
  std::string what;
  for (const ConfChangeSingle& c : change.changes) {
    what += fmt::format(" {}{}", c.type == ConfChangeType::kAddVoter ? "+voter " : "+learner ",
                        c.node.str());
  }
  note(TraceCode::kFault, *l,
       fmt::format("n{} proposes a conf change{}{}: {}", *l + 1, what,
                   change.transition == ConfChangeTransition::kJoint ? " (joint)" : "",
                   proposed.is_ok() ? fmt::format("index {}", proposed->index.value())
                                    : proposed.status().to_string()));
}

namespace {

constexpr SimTime kRejoinStepUs = 50'000;

}  // namespace

bool Simulator::holds_state(const NodeId& id) {
  for (const auto& node : nodes_) {
    if (node->id() != id || !awaiting_state_.contains(node->index())) continue;
    const RaftEngine* e = node->engine();
    if (e == nullptr || e->last_index() == LogIndex(0)) return false;
    awaiting_state_.erase(node->index());
  }
  return true;
}

// Takes a member out of the group, wipes its disk once the leader has
// applied the removal, and adds it back, empty, as a learner under the same
// id: a shard replica that moved away, was dropped and moves back (the
// whole-node simulation's seeds 10474 and 760129). Raft assumes a member
// never forgets; the node id coming back must not make it one that has.
void Simulator::rejoin_member() {
  if (rejoin_) return;
  const std::optional<std::uint32_t> l = leader();
  if (!l) return;
  const ConfState conf = nodes_[*l]->engine()->conf_state();
  if (is_joint(conf)) return;
  std::vector<NodeId> candidates = conf.learners;
  if (conf.voters.size() >= 3) {
    for (const NodeId& v : conf.voters) {
      if (v != nodes_[*l]->id()) candidates.push_back(v);
    }
  }
  if (candidates.empty()) return;
  const NodeId who = candidates[fault_rng_.uniform(candidates.size())];
  for (const auto& node : nodes_) {
    if (node->id() != who) continue;
    rejoin_ = Rejoin{node->index(), false, LogIndex(0)};
    ++stats_.rejoins;
    note(TraceCode::kFault, *l,
         fmt::format("{} is taken out of the group, to be wiped and added back", who.str()));
    advance_rejoin();
    return;
  }
}

// Every kRejoinStepUs until the member is back, faults or not (the run's
// settling waits for it): propose the removal until the leader has applied
// it, then wipe and restart the member, then propose it as a learner until
// a leader that has committed the removal names it again.
void Simulator::advance_rejoin() {
  if (!rejoin_) return;
  SimNode& node = *nodes_[rejoin_->node];
  const std::optional<std::uint32_t> l = leader();
  if (l && (!rejoin_->wiped || nodes_[*l]->engine()->commit_index() >= rejoin_->removed_by)) {
    SimNode& lead = *nodes_[*l];
    const ConfState conf = lead.engine()->conf_state();
    const bool named = names_member(conf, node.id());
    if (!rejoin_->wiped && !named) {
      rejoin_->removed_by = lead.engine()->commit_index();
      crash_node(node.index(), false, "taken out of the group; its disk is wiped");
      const Status wiped = node.wipe();
      if (!wiped.is_ok()) {
        violation(wiped.with_context(fmt::format("wiping {}", node.id().str())));
        return;
      }
      invariants_.record_wiped(node.id());
      awaiting_state_.insert(node.index());
      restart_node(node.index());
      rejoin_->wiped = true;
    } else if (rejoin_->wiped && named) {
      note(TraceCode::kFault, *l, fmt::format("{} is back in the group", node.id().str()));
      rejoin_.reset();
      return;
    } else if (!is_joint(conf) && !(rejoin_->wiped && !node.up())) {
      ConfChange change;
      change.changes.push_back({rejoin_->wiped ? ConfChangeType::kAddLearner
                                               : ConfChangeType::kRemoveNode,
                                node.id()});
      const Result<ProposeResult> proposed = lead.propose_conf_change(change);
      note(TraceCode::kFault, *l,
           fmt::format("{} proposes {} {}: {}", lead.id().str(),
                       rejoin_->wiped ? "+learner" : "-", node.id().str(),
                       proposed.is_ok() ? fmt::format("index {}", proposed->index.value())
                                        : proposed.status().to_string()));
    }
  }
  SimEvent e;
  e.time = now_ + kRejoinStepUs;
  e.kind = EventKind::kRejoinStep;
  schedule(std::move(e));
}

void Simulator::redraw_random_skew() {
  redraw_skew(static_cast<std::uint32_t>(fault_rng_.uniform(nodes_.size())));
}

void Simulator::redraw_skew(std::uint32_t index) {
  const double drift = (fault_rng_.next_double() * 2 - 1) * profile_.max_clock_skew;
  const auto nominal = static_cast<double>(SimTime{options_.tick_ms} * kMicrosPerMilli);
  const auto period = static_cast<SimTime>(std::llround(nominal * (1 + drift)));
  nodes_[index]->set_tick_period_us(std::max<SimTime>(period, 1));
  if (profile_.max_clock_skew > 0) {
    note(TraceCode::kFault, index, fmt::format("n{} ticks every {} us", index + 1, period));
  }
}

}  // namespace nodenomad::sim
