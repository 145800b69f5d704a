// The whole-node simulation: setup, the faulty phase, the nemesis, crashes
// and restarts, and the checks after every step (cluster_sim_impl.hpp).
#include <fmt/format.h>

#include "sim_cluster/cluster_sim_impl.hpp"

namespace nodenomad::sim_cluster {
namespace {

// The simulated clocks start at an arbitrary, realistic reading: code that
// treats 0 as "never" must not be fooled by a clock that starts there.
constexpr auto kMonotonicStart = std::chrono::hours(1);
// Scheduler steps per simulated millisecond before a run is an event storm.
constexpr std::uint64_t kMaxStepsPerMs = 100;
constexpr std::uint32_t kReplicationFactor = 3;
// Failures after the first that the report still lists.
constexpr std::uint32_t kMaxReportedFailures = 3;

}  // namespace

ClusterSim::ClusterSim(const testing::ClusterSimOptions& options)
    : options_(options),
      rng_(options.seed),
      clock_(MonoTime(kMonotonicStart)),
      scheduler_(clock_),
      trace_(options.trace_tail_events, options.on_event),
      nemesis_rng_(1) {
  Rng profile_rng = rng_.fork();
  profile_ = options_.faults ? *options_.faults : testing::ClusterFaultProfile::draw(profile_rng);
  if (options_.diverge_probability > 0) profile_.diverge_probability = options_.diverge_probability;
  Rng scenario_rng = rng_.fork();
  scenario_ = draw_scenario(options_, scenario_rng);
  nemesis_rng_ = rng_.fork();
}

ClusterSim::~ClusterSim() {
  // The nodes answer what is in flight as they stop: the clients must be
  // there to hear it.
  nodes_.reset();
}

void ClusterSim::fail(std::string why) {
  trace_.note(scheduler_.now(), "VIOLATION " + why);
  // The first failure ends the phase; the history is still checked after it
  // and says its own (an illegal history behind a liveness failure).
  if (failure_.empty()) {
    failure_ = std::move(why);
  } else if (failures_ < kMaxReportedFailures) {
    failure_ += "\nand then: " + why;
  }
  ++failures_;
}

void ClusterSim::setup() {
  std::vector<NodeId> ids;
  for (std::uint32_t i = 0; i < kFounders + scenario_.joiners; ++i) ids.push_back(sim_node_id(i));
  network_ = std::make_unique<SimNetwork>(scheduler_, rng_.fork(), profile_, trace_, ids);
  network_->set_duplicate_requests(options_.duplicate_requests);
  if (options_.trace_raft_group) network_->trace_group(*options_.trace_raft_group);
  nodes_ = std::make_unique<ClusterNodes>(scheduler_, *network_, clock_, scenario_, profile_,
                                          rng_.fork(), trace_);
  invariants_ = std::make_unique<ClusterInvariants>(kReplicationFactor);
  clients_ = std::make_unique<ClusterClients>(scheduler_, *nodes_, scenario_,
                                              options_.client_count, rng_.fork(), trace_,
                                              options_.bug);
  driver_ = std::make_unique<MigrationDriver>(scheduler_, *nodes_, *invariants_, scenario_,
                                              rng_.fork(), trace_, options_.random_migrations);
  last_views_.resize(ids.size());
  down_until_.assign(ids.size(), 0);
  nodes_->on_down = [this](std::uint32_t i) { clients_->on_node_down(i); };
  invariants_->on_new_record = [this](const node::MigrationRecord& r) {
    trace_.note(scheduler_.now(),
                fmt::format("record {} shard {} {}->{} {}{}{}{}", r.id, r.shard.value(),
                            r.source.str(), r.target.str(), migration_stage_name(r.stage),
                            r.started ? "" : " queued", r.rolling_back ? " rolling back" : "",
                            r.paused ? " paused" : ""));
    driver_->on_record(r);
  };
  driver_->kill = [this](std::uint32_t i, std::uint32_t down_ms, const std::string& why) {
    ++stats_.stage_kills;
    crash_for(i, down_ms, why, false);
  };
  faulty_until_ = options_.duration_ms * 1000;
  max_steps_ = options_.max_total_steps != 0
                   ? options_.max_total_steps
                   : kMaxStepsPerMs * (options_.duration_ms + options_.settle_ms);
  trace_.note(0, "faults: " + profile_.describe());
  trace_.note(0, "scenario: " + describe_scenario(scenario_));
  for (std::uint32_t f = 0; f < kFounders; ++f) {
    if (Status s = nodes_->start(f); !s.is_ok()) return fail("a founder did not open: " + s.to_string());
  }
  clients_->start();
  driver_->start(faulty_until_);
  schedule_nemesis();
}

bool ClusterSim::step() {
  if (scheduler_.empty()) {
    fail("nothing is left to run (every node stopped)");
    return false;
  }
  scheduler_.run_next();
  check_views();
  check_failed_nodes();
  if (scheduler_.steps() > max_steps_) {
    fail(fmt::format("event storm: {} steps by {} ms simulated (the bound is {})",
                     scheduler_.steps(), scheduler_.now() / 1000, max_steps_));
  }
  return failure_.empty();
}

// Every view a live node applied since the last step goes through the
// invariants (a view is immutable and shared, so its pointer tells a new one).
void ClusterSim::check_views() {
  for (std::uint32_t i = 0; i < nodes_->count() && failure_.empty(); ++i) {
    Node* node = nodes_->node(i);
    if (node == nullptr) continue;
    std::shared_ptr<const ClusterMetadata> view = node->metadata();
    if (view.get() == last_views_[i].get()) continue;
    last_views_[i] = view;
    trace_.hash_u64(view->record_revision());
    const std::string violation = invariants_->observe(i, nodes_->incarnation(i), *view);
    if (!violation.empty()) {
      fail(fmt::format("in {}'s metadata: {}", nodes_->id(i).str(), violation));
    }
  }
}

// A node whose disk failed stops serving (Node::failure()); like a process
// that exits, it is restarted from its disk a moment later.
void ClusterSim::check_failed_nodes() {
  for (std::uint32_t i = 0; i < nodes_->count(); ++i) {
    Node* node = nodes_->node(i);
    if (node == nullptr) continue;
    const Status failure = node->failure();
    if (failure.is_ok()) continue;
    ++stats_.fail_stops;
    crash_for(i, static_cast<std::uint32_t>(nemesis_rng_.uniform_in(100, 1'000)),
              "fail-stop: " + failure.to_string(), false);
  }
}

void ClusterSim::crash_for(std::uint32_t i, std::uint32_t down_ms, const std::string& why,
                           bool tear) {
  if (!nodes_->up(i)) return;
  nodes_->crash(i, tear, why);
  last_views_[i].reset();
  const SimTime due = scheduler_.now() + SimTime{down_ms} * 1000;
  down_until_[i] = due;
  scheduler_.at(due, kNoOwner, [this, i, due] {
    if (down_until_[i] == due) restart(i);
  });
}

void ClusterSim::restart(std::uint32_t i) {
  down_until_[i] = 0;
  if (nodes_->up(i)) return;
  if (Status s = nodes_->start(i); !s.is_ok()) {
    fail(fmt::format("{} did not restart from its disk: {}", nodes_->id(i).str(), s.to_string()));
  }
}

// --- the nemesis ---

void ClusterSim::schedule_nemesis() {
  if (profile_.nemesis_max_interval_ms == 0) return;
  const SimTime delay =
      nemesis_rng_.uniform_in(profile_.nemesis_min_interval_ms, profile_.nemesis_max_interval_ms) *
      1000;
  scheduler_.at(scheduler_.now() + delay, kNoOwner, [this] { nemesis(); });
}

void ClusterSim::nemesis() {
  if (!faulty_) return;
  schedule_nemesis();
  const std::uint32_t weights[] = {profile_.partition_weight, profile_.one_way_weight,
                                   profile_.isolate_weight,   profile_.crash_weight,
                                   profile_.disk_fault_weight, profile_.heal_weight};
  std::uint64_t total = 0;
  for (std::uint32_t w : weights) total += w;
  if (total == 0) return;
  std::uint64_t roll = nemesis_rng_.uniform(total);
  std::uint64_t kind = 0;
  while (roll >= weights[kind]) roll -= weights[kind++];
  if (kind <= 2) return partition_action(kind);
  std::vector<std::uint32_t> live;
  for (std::uint32_t i = 0; i < nodes_->count(); ++i) {
    if (nodes_->up(i)) live.push_back(i);
  }
  if (live.empty()) return;
  const std::uint32_t victim = live[nemesis_rng_.uniform(live.size())];
  if (kind == 3) {
    if (nodes_->down_count() >= profile_.max_down_nodes) return;
    const bool tear = nemesis_rng_.chance(profile_.torn_tail_probability);
    crash_for(victim,
              static_cast<std::uint32_t>(
                  nemesis_rng_.uniform_in(profile_.down_min_ms, profile_.down_max_ms)),
              "nemesis", tear);
  } else if (kind == 4) {
    ++stats_.disk_faults;
    nodes_->fail_next_sync(victim);
  } else {
    trace_.note(scheduler_.now(), "nemesis: heal the network");
    network_->heal();
  }
}

void ClusterSim::partition_action(std::uint64_t kind) {
  const std::uint32_t n = nodes_->count();
  std::string what;
  if (kind == 0) {  // a random two-sided split
    std::vector<bool> side(n);
    std::uint32_t left = 0;
    for (std::uint32_t i = 0; i < n; ++i) left += (side[i] = nemesis_rng_.chance(0.5)) ? 1 : 0;
    if (left == 0 || left == n) side[nemesis_rng_.uniform(n)] = left == 0;
    for (std::uint32_t a = 0; a < n; ++a) {
      for (std::uint32_t b = 0; b < n; ++b) {
        if (side[a] != side[b]) network_->cut(a, b);
      }
      if (side[a]) what += " " + nodes_->id(a).str();
    }
    what = "partition {" + what + " } from the rest";
  } else if (kind == 1) {  // one-way cuts
    const std::uint64_t links = nemesis_rng_.uniform_in(1, 3);
    for (std::uint64_t l = 0; l < links; ++l) {
      const auto a = static_cast<std::uint32_t>(nemesis_rng_.uniform(n));
      const auto b = static_cast<std::uint32_t>(nemesis_rng_.uniform(n));
      network_->cut(a, b);
      what += fmt::format(" {}->{}", nodes_->id(a).str(), nodes_->id(b).str());
    }
    what = "cut" + what;
  } else {  // one node alone
    const auto a = static_cast<std::uint32_t>(nemesis_rng_.uniform(n));
    for (std::uint32_t b = 0; b < n; ++b) {
      network_->cut(a, b);
      network_->cut(b, a);
    }
    what = "isolate " + nodes_->id(a).str();
  }
  ++stats_.partitions;
  const std::uint64_t generation = ++partition_generation_;
  const SimTime heal_at =
      scheduler_.now() +
      nemesis_rng_.uniform_in(profile_.fault_min_ms, profile_.fault_max_ms) * 1000;
  trace_.note(scheduler_.now(), "nemesis: " + what);
  scheduler_.at(heal_at, kNoOwner, [this, generation] {
    if (generation != partition_generation_ || !faulty_) return;
    trace_.note(scheduler_.now(), "nemesis: the partition heals");
    network_->heal();
  });
}

testing::ClusterSimResult ClusterSim::run() {
  setup();
  while (failure_.empty() && !scheduler_.empty() && scheduler_.next_time() < faulty_until_) {
    step();
  }
  if (failure_.empty()) heal();
  std::string why = "not checked yet";
  const SimTime settle_start = scheduler_.now();
  SimTime next_check = settle_start;
  while (failure_.empty()) {
    if (scheduler_.now() >= next_check) {
      if (at_rest(why) && digests_agree(why)) break;
      next_check = scheduler_.now() + 200'000;
    }
    if (scheduler_.now() - settle_start > options_.settle_ms * 1000) {
      fail(fmt::format("the cluster did not come to rest within {} ms: {}", options_.settle_ms, why));
      break;
    }
    step();
  }
  stats_.settle_ms = (scheduler_.now() - settle_start) / 1000;
  for (std::uint32_t i = 0; i < nodes_->count(); ++i) {
    if (Node* node = nodes_->node(i)) {
      stats_.requests_resumed_on_leader += node->request_counters().resumed_on_leader;
    }
  }
  check_history();
  testing::ClusterSimResult result;
  fill_result(result);
  return result;
}

}  // namespace nodenomad::sim_cluster

namespace nodenomad::testing {

ClusterSimResult run_cluster_simulation(const ClusterSimOptions& options) {
  sim_cluster::ClusterSim sim(options);
  return sim.run();
}

}  // namespace nodenomad::testing
