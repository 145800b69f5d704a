// The whole-node simulation itself (cluster_simulator.hpp): the parts of one
// run and its phases.
//
//   cluster_simulator.cpp  setup, the faulty phase, the nemesis, crashes and
//                          restarts, the checks after every step
//   cluster_settle.cpp     healing, coming to rest, the end-state checks
//                          (digests, metadata, history)
//   cluster_result.cpp     the result's JSON line and report
//
// Thread safety: none; a run is one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/testing/cluster_simulator.hpp"
#include "sim_cluster/cluster_clients.hpp"
#include "sim_cluster/cluster_config.hpp"
#include "sim_cluster/cluster_invariants.hpp"
#include "sim_cluster/cluster_nodes.hpp"
#include "sim_cluster/cluster_trace.hpp"
#include "sim_cluster/migration_driver.hpp"
#include "sim_cluster/scheduler.hpp"
#include "sim_cluster/sim_transport.hpp"

namespace nodenomad::sim_cluster {

class ClusterSim {
 public:
  explicit ClusterSim(const testing::ClusterSimOptions& options);
  ~ClusterSim();
  testing::ClusterSimResult run();

 private:
  // cluster_simulator.cpp
  void setup();
  bool step();  // one task and the checks after it; false: stop the phase
  void check_views();
  void check_failed_nodes();
  void crash_for(std::uint32_t i, std::uint32_t down_ms, const std::string& why, bool tear);
  void restart(std::uint32_t i);
  void schedule_nemesis();
  void nemesis();
  void partition_action(std::uint64_t kind);
  void fail(std::string why);

  // cluster_settle.cpp
  void heal();
  bool at_rest(std::string& why);
  bool shards_at_rest(const ClusterMetadata& view, std::string& why);
  std::shared_ptr<const ClusterMetadata> newest_view();
  bool digests_agree(std::string& why);
  std::string stale_reads(ShardId shard, const std::vector<std::uint32_t>& holders);
  void check_history();
  void fill_result(testing::ClusterSimResult& result);

  testing::ClusterSimOptions options_;
  Rng rng_;
  testing::ClusterFaultProfile profile_;
  Scenario scenario_;
  ManualClock clock_;
  Scheduler scheduler_;
  ClusterTrace trace_;
  std::unique_ptr<SimNetwork> network_;
  std::unique_ptr<ClusterNodes> nodes_;
  std::unique_ptr<ClusterInvariants> invariants_;
  std::unique_ptr<ClusterClients> clients_;
  std::unique_ptr<MigrationDriver> driver_;
  Rng nemesis_rng_;

  std::vector<std::shared_ptr<const ClusterMetadata>> last_views_;  // by node
  std::vector<std::uint64_t> down_until_;  // a restart is due (sim time), 0: none
  std::uint64_t partition_generation_ = 0;
  bool faulty_ = true;
  std::string failure_;
  std::uint32_t failures_ = 0;
  testing::Verdict verdict_ = testing::Verdict::kOk;
  testing::ClusterSimStats stats_;
  SimTime faulty_until_ = 0;
  std::uint64_t max_steps_ = 0;
};

}  // namespace nodenomad::sim_cluster
