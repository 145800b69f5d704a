// Simulator: setup, the event loop and the callbacks of nodes and clients.
#include "sim/simulator_impl.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "nodenomad/raft/message_codec.hpp"
#include "sim/sim_config.hpp"

namespace nodenomad::sim {
namespace {

// How often (simulated) the settling phase asks whether the cluster has
// converged; asking after every event would cost more than the events.
constexpr SimTime kConvergenceCheckEveryUs = 10'000;
// The default bound on a run's events, per simulated millisecond.
constexpr std::uint64_t kStormStepsPerMs = 20;

NetworkParams network_params(const testing::SimFaultProfile& p) {
  NetworkParams n;
  n.min_latency_us = p.min_latency_us;
  n.max_latency_us = p.max_latency_us;
  n.drop_probability = p.drop_probability;
  n.duplicate_probability = p.duplicate_probability;
  n.long_delay_probability = p.long_delay_probability;
  n.long_delay_max_us = p.long_delay_max_us;
  return n;
}

// What a delivery's trace line adds to type, term and index.
std::string delivery_details(const Message& m) {
  std::string out;
  if (m.reject) out += " reject";
  if (!m.entries.empty()) {
    out += fmt::format(" entries {}..{}", m.entries.front().index.value(),
                       m.entries.back().index.value());
  }
  if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat) {
    out += fmt::format(" commit {}", m.commit.value());
  }
  if (m.type == MessageType::kSnapshot || m.type == MessageType::kSnapshotResponse) {
    out += fmt::format(" snapshot {} transfer {} offset {} bytes {}{}",
                       m.snapshot.meta.index.value(), m.snapshot.transfer_id, m.snapshot.offset,
                       m.snapshot.data.size(), m.snapshot.last ? " last" : "");
  }
  return out;
}

}  // namespace

Simulator::Simulator(testing::SimOptions options)
    : options_(std::move(options)),
      rng_(options_.seed),
      fault_rng_(rng_.fork()),
      trace_(options_.trace_tail_events, options_.on_event) {}

Simulator::~Simulator() = default;

void Simulator::build() {
  NN_ASSERT(options_.node_count >= 1 && options_.node_count <= 7, "node_count ",
            options_.node_count, " is not in [1, 7]");
  NN_ASSERT(options_.tick_ms > 0, "tick_ms must be at least 1");
  Rng config_rng = rng_.fork();
  profile_ = options_.faults ? *options_.faults : testing::SimFaultProfile::draw(config_rng);
  profile_.max_clock_skew = std::min(profile_.max_clock_skew, 0.04);
  // A range given upside down is read as the single value of its minimum.
  profile_.fault_max_ms = std::max(profile_.fault_max_ms, profile_.fault_min_ms);
  profile_.down_max_ms = std::max(profile_.down_max_ms, profile_.down_min_ms);
  if (profile_.nemesis_max_interval_ms > 0) profile_.rejoin_weight += options_.rejoin_weight;
  raft_config_ = options_.raft ? *options_.raft : draw_raft_config(config_rng);
  // As the node runs its shard groups: a member wiped and added back
  // (rejoin_weight) must not vote or become a voter from its old self.
  if (options_.runtime_bug != testing::SimRuntimeBug::kUnguardedRejoin) {
    raft_config_.unconfigured_votes = false;
    raft_config_.members_join_as_learners = true;
  }
  node_config_ = draw_node_config(config_rng, raft_config_, profile_);
  node_config_.bug = options_.runtime_bug;
  network_ = std::make_unique<SimNetwork>(options_.node_count, network_params(profile_),
                                          rng_.fork());
  testing::RandomKvMix mix;
  mix.key_count = static_cast<std::uint32_t>(config_rng.uniform_in(1, 6));
  workload_ = options_.workload ? options_.workload() : testing::make_random_kv_workload(mix);

  ConfState conf;
  for (std::uint32_t i = 0; i < options_.node_count; ++i) {
    NodeId id(fmt::format("n{}", i + 1));
    conf.voters.push_back(id);
    nodes_.push_back(std::make_unique<SimNode>(i, id, node_config_, rng_.fork(), clock_, *this));
  }
  std::sort(conf.voters.begin(), conf.voters.end());
  for (auto& node : nodes_) {
    Status s = node->bootstrap(conf);
    if (s.is_ok()) s = node->start();
    if (!s.is_ok()) {
      violation(s.with_context(fmt::format("starting {}", node->id().str())));
      return;
    }
    redraw_skew(node->index());
    schedule_tick(node->index(), rng_.uniform_in(1, node->tick_period_us()));
  }
  ClientParams params;
  params.client_count = options_.client_count;
  params.node_count = options_.node_count;
  params.op_timeout_us = SimTime{options_.op_timeout_ms} * kMicrosPerMilli;
  clients_ = std::make_unique<ClientDriver>(params, *workload_, rng_.fork(), *this);
  clients_->start();
  schedule_nemesis();
}

testing::SimResult Simulator::run() {
  build();
  if (!failed() && options_.on_start) options_.on_start(*this);
  if (!failed() && !stopped_) {
    run_until(options_.duration_ms * kMicrosPerMilli, options_.max_steps, nullptr);
  }
  // A host that stopped the run, in the faulty phase or while it settled,
  // wants no healing, settling or end-state checks (SimControl::stop()).
  if (!failed() && !stopped_) {
    heal_everything();
    run_until(now_ + options_.settle_ms * kMicrosPerMilli, 0, &Simulator::converged);
    if (!failed() && !stopped_ && !converged()) {
      violation(Status::failed(fmt::format(
          "liveness: the cluster did not converge within {} ms after every fault was healed:{}",
          options_.settle_ms, describe_nodes())));
    }
    if (!failed() && !stopped_) {
      const Status same = check_same_state();
      if (!same.is_ok()) violation(same);
    }
  }
  if (!failed() && options_.check_linearizability) check_history();
  return result();
}

void Simulator::schedule(SimEvent event) {
  const bool pushed = queue_.push(std::move(event));
  // Only deliveries can be refused in practice; timers are few.
  if (!pushed) ++stats_.messages_dropped;
}

void Simulator::schedule_tick(std::uint32_t node, SimTime delay) {
  SimEvent e;
  e.time = now_ + delay;
  e.kind = EventKind::kTick;
  e.node = node;
  e.arg = nodes_[node]->incarnation();
  schedule(std::move(e));
}

void Simulator::run_until(SimTime end, std::uint64_t max_steps, bool (Simulator::*done)() const) {
  const std::uint64_t storm =
      options_.max_total_steps != 0 ? options_.max_total_steps
                                    : kStormStepsPerMs * (options_.duration_ms + options_.settle_ms);
  std::uint64_t steps = 0;
  SimTime last_check = now_;
  while (!failed() && !stopped_ && !queue_.empty() && queue_.next_time() <= end) {
    if (max_steps != 0 && steps >= max_steps) return;
    if (stats_.steps >= storm) {
      violation(Status::failed(fmt::format(
          "event storm: more than {} events in {} ms simulated (a livelock?)", storm,
          now_ / kMicrosPerMilli)));
      return;
    }
    SimEvent event = queue_.pop();
    clock_.advance(std::chrono::microseconds(event.time - now_));
    now_ = event.time;
    dispatch(event);
    ++steps;
    ++stats_.steps;
    after_step();
    if (options_.on_step && !failed()) options_.on_step(*this);
    if (done != nullptr && now_ - last_check >= kConvergenceCheckEveryUs) {
      last_check = now_;
      if ((this->*done)()) return;
    }
  }
}

void Simulator::dispatch(SimEvent& e) {
  trace_.record({.time = now_, .code = TraceCode::kTick, .sub = static_cast<std::uint8_t>(e.kind),
                 .node = e.node, .peer = e.peer, .a = e.arg},
                {}, /*hash_only=*/true);
  switch (e.kind) {
    case EventKind::kTick: {
      SimNode& n = *nodes_[e.node];
      if (!n.up() || n.incarnation() != e.arg) return;
      n.tick();
      schedule_tick(e.node, n.tick_period_us());
      return;
    }
    case EventKind::kDeliver: deliver(e); return;
    case EventKind::kDiskDone: nodes_[e.node]->on_disk_done(e.arg); return;
    case EventKind::kClientArrive: client_arrive(e); return;
    case EventKind::kClientReply:
      clients_->on_reply(e.peer, std::get<ClientReply>(e.payload));
      return;
    case EventKind::kClientWake: clients_->on_wake(e.node, e.arg); return;
    case EventKind::kClientDeadline: clients_->on_deadline(e.node, e.arg); return;
    case EventKind::kAttemptTimeout: clients_->on_attempt_timeout(e.node, e.arg); return;
    case EventKind::kNemesis: on_nemesis(); return;
    case EventKind::kRestart: restart_node(e.node); return;
    case EventKind::kNetworkHeal:
      if (network_->generation() == e.arg) {
        network_->heal();
        note(TraceCode::kFault, 0, "network healed (partition ended)");
      }
      return;
    case EventKind::kClogStep: on_clog_step(e.arg); return;
    case EventKind::kHostAction: run_host_action(e.arg); return;
    case EventKind::kRejoinStep: advance_rejoin(); return;
  }
}

void Simulator::deliver(SimEvent& e) {
  const std::string& bytes = std::get<std::string>(e.payload);
  SimNode& to = *nodes_[e.node];
  SimNode& from = *nodes_[e.peer];
  std::string_view why;
  if (!network_->link_up(e.peer, e.node)) why = "link cut";
  if (why.empty() && (!to.up() || to.failed())) why = "node down";
  if (!why.empty()) {
    ++stats_.messages_dropped;
    trace_.record({.time = now_, .code = TraceCode::kDrop, .sub = static_cast<std::uint8_t>(bytes[1]),
                   .node = e.node, .peer = e.peer, .note = std::string(why)},
                  {}, /*hash_only=*/true);
    // A refused connection is what a real transport would notice.
    if (why == "node down" && from.up() && !from.failed()) from.report_unreachable(to.id());
    return;
  }
  Result<Message> message = decode_message(bytes);
  if (!message.is_ok()) {
    violation(message.status().with_context("a message that was encoded does not decode"));
    return;
  }
  ++stats_.messages_delivered;
  const bool routine = message->type == MessageType::kHeartbeat ||
                       message->type == MessageType::kHeartbeatResponse;
  trace_.record({.time = now_, .code = TraceCode::kDeliver,
                 .sub = static_cast<std::uint8_t>(message->type), .node = e.node, .peer = e.peer,
                 .a = message->term.value(), .b = message->index.value(),
                 .note = delivery_details(*message)},
                {}, routine);
  to.deliver(*message);
}

void Simulator::client_arrive(SimEvent& e) {
  const ClientRequest& request = std::get<ClientRequest>(e.payload);
  SimNode& node = *nodes_[e.node];
  if (!node.up() || node.failed()) {
    reply(e.node, ClientReply{request.request_id, request.client, ReplyKind::kUnavailable, {}, {}});
    return;
  }
  node.on_client_request(request);
}

void Simulator::after_step() {
  for (auto& node : nodes_) {
    if (node->up() && node->failed()) {
      const bool tear = fault_rng_.chance(profile_.torn_tail_probability);
      crash_node(node->index(), tear,
                 fmt::format("fail-stop after an I/O error: {}", node->failure().to_string()));
      SimEvent e;
      e.time = now_ + (faults_on_ ? fault_rng_.uniform_in(profile_.down_min_ms,
                                                          profile_.down_max_ms) * kMicrosPerMilli
                                  : kMicrosPerMilli);
      e.kind = EventKind::kRestart;
      e.node = node->index();
      schedule(std::move(e));
    }
  }
  std::vector<const RaftEngine*> live;
  live.reserve(nodes_.size());
  for (const auto& node : nodes_) {
    if (const RaftEngine* engine = node->engine(); engine != nullptr) {
      live.push_back(engine);
      stats_.max_term = std::max(stats_.max_term, engine->term().value());
      stats_.max_commit = std::max(stats_.max_commit, engine->commit_index().value());
    }
  }
  const Status checked = invariants_.check(live);
  if (!checked.is_ok()) violation(checked);
}

void Simulator::note(TraceCode code, std::uint32_t node, std::string text) {
  trace_.record({.time = now_, .code = code, .node = node, .note = std::move(text)});
}

// --- NodeHost / ClientHost ------------------------------------------------------

void Simulator::send(std::uint32_t from, const Message& message) {
  ++stats_.messages_sent;
  const std::optional<std::uint32_t> to = node_index(message.to);
  if (!to) {
    violation(Status::failed(fmt::format("{} sent a message to unknown node {}",
                                         nodes_[from]->id().str(), message.to.str())));
    return;
  }
  std::string bytes = encode_message(message);
  trace_.record({.time = now_, .code = TraceCode::kSend,
                 .sub = static_cast<std::uint8_t>(message.type), .node = from, .peer = *to},
                bytes, /*hash_only=*/true);
  const Route route = network_->route(from, *to, now_);
  if (route.copies == 0) ++stats_.messages_dropped;
  if (route.copies == 2) ++stats_.messages_duplicated;
  for (std::uint32_t copy = 0; copy < route.copies; ++copy) {
    SimEvent e;
    e.time = route.at[copy];
    e.kind = EventKind::kDeliver;
    e.node = *to;
    e.peer = from;
    e.payload = copy + 1 == route.copies ? std::move(bytes) : bytes;
    schedule(std::move(e));
  }
}

void Simulator::reply(std::uint32_t node, const ClientReply& reply) {
  if (profile_.client_drop_probability > 0 && rng_.chance(profile_.client_drop_probability)) {
    return;  // the client will time out: the answer is lost, not the effect
  }
  SimEvent e;
  e.time = now_ + network_->latency();
  e.kind = EventKind::kClientReply;
  e.node = static_cast<std::uint32_t>(reply.client);
  e.peer = node;
  e.payload = reply;
  schedule(std::move(e));
}

void Simulator::send_request(std::uint32_t node, const ClientRequest& request) {
  if (profile_.client_drop_probability > 0 && rng_.chance(profile_.client_drop_probability)) {
    return;
  }
  SimEvent e;
  e.time = now_ + network_->latency();
  e.kind = EventKind::kClientArrive;
  e.node = node;
  e.payload = request;
  schedule(std::move(e));
}

void Simulator::schedule_client(EventKind kind, std::uint32_t client, std::uint64_t arg,
                                SimTime delay) {
  SimEvent e;
  e.time = now_ + delay;
  e.kind = kind;
  e.node = client;
  e.arg = arg;
  schedule(std::move(e));
}

void Simulator::schedule_disk_done(std::uint32_t node, std::uint64_t incarnation, SimTime delay) {
  SimEvent e;
  e.time = now_ + delay;
  e.kind = EventKind::kDiskDone;
  e.node = node;
  e.arg = incarnation;
  schedule(std::move(e));
}

void Simulator::on_soft_state(std::uint32_t node, const SoftState& soft, Term term) {
  trace_.record({.time = now_, .code = TraceCode::kRole, .sub = static_cast<std::uint8_t>(soft.role),
                 .node = node, .a = term.value(), .note = soft.leader.str()});
  if (soft.role == RaftRole::kLeader) leaders_seen_.insert({term.value(), node});
}

void Simulator::violation(const Status& status) {
  if (!failure_.is_ok()) return;
  failure_ = status;
  note(TraceCode::kViolation, 0, status.to_string());
}

std::optional<std::uint32_t> Simulator::node_index(const NodeId& id) const {
  const std::string& s = id.str();
  if (s.size() < 2 || s[0] != 'n') return std::nullopt;
  std::uint32_t value = 0;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(s[i] - '0');
    if (value > nodes_.size()) return std::nullopt;
  }
  if (value == 0) return std::nullopt;
  return value - 1;
}

}  // namespace nodenomad::sim

namespace nodenomad::testing {

SimResult run_simulation(const SimOptions& options) {
  sim::Simulator simulator(options);
  return simulator.run();
}

}  // namespace nodenomad::testing
