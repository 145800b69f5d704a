// The migration driver of a whole-node simulation: it grows the cluster
// (each joiner is started with join set, then added through a live founder's
// add_node until that succeeds, and rebalanced onto when the nodes do not
// rebalance on join), calls the migration API at random times (create a
// move, rebalance, drain a node, cancel, pause, resume, change a bandwidth)
// through random live nodes, and fires the stage kills: when an operation is
// first seen entering a planned stage, its source, target or coordinator is
// crashed and restarted later.
//
// Calls are fire-and-forget: an answer, when one comes, goes to the trace;
// a node that crashes never answers. Nothing here judges the answers (the
// invariants and the end state do).
//
// Thread safety: none; one simulation thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nodenomad/rng.hpp"
#include "sim_cluster/cluster_config.hpp"
#include "sim_cluster/cluster_invariants.hpp"
#include "sim_cluster/cluster_nodes.hpp"
#include "sim_cluster/cluster_trace.hpp"
#include "sim_cluster/scheduler.hpp"

namespace nodenomad::sim_cluster {

class MigrationDriver {
 public:
  MigrationDriver(Scheduler& scheduler, ClusterNodes& nodes, const ClusterInvariants& invariants,
                  const Scenario& scenario, Rng rng, ClusterTrace& trace, bool random_calls);

  // Schedules the joins and, until `faulty_until`, the random calls.
  void start(SimTime faulty_until);
  // The settling phase: no more random calls; paused operations are resumed
  // (a paused operation never ends); joins still go on until they succeed.
  void settle();
  // Every joiner started and added (add_node answered OK).
  bool joins_done() const;
  // A new operation record version (ClusterInvariants::on_new_record).
  void on_record(const node::MigrationRecord& record);

  // Crashes node `index` and restarts it `down_ms` later (the simulator's).
  std::function<void(std::uint32_t index, std::uint32_t down_ms, const std::string& why)> kill;

  std::uint64_t admin_calls() const { return admin_calls_; }
  const std::vector<std::string>& kills_fired() const { return kills_fired_; }

 private:
  void join(std::uint32_t index);
  void add_member(std::uint32_t index);
  void rebalance_after_join(int attempts_left);
  void random_call();
  void call_create(Node& via);
  void call_control(Node& via, MigrationControl control);
  void resume_paused();
  void fire_kill(std::size_t plan, const node::MigrationRecord& record);
  std::vector<std::uint32_t> live_nodes() const;
  Node* random_live_node();
  std::vector<std::string> running_ops(bool paused_only) const;
  void after(SimTime delay_us, std::function<void()> fn);
  void trace_answer(const std::string& what, const Status& status);

  Scheduler& scheduler_;
  ClusterNodes& nodes_;
  const ClusterInvariants& invariants_;
  const Scenario& scenario_;
  Rng rng_;
  ClusterTrace& trace_;
  bool random_calls_;
  SimTime faulty_until_ = 0;
  bool settling_ = false;
  bool drained_ = false;
  std::vector<bool> joined_;           // by joiner (index - kFounders)
  std::vector<bool> kill_fired_;       // by plan
  std::vector<bool> kill_pending_;     // a kill task is queued
  std::vector<std::string> kills_fired_;
  std::uint64_t admin_calls_ = 0;
};

}  // namespace nodenomad::sim_cluster
