// The Nodes of a whole-node simulation and their lives: each has its own
// FaultInjectingFileSystem (its disk, kept across crashes), and for each
// incarnation a SimLoop, a background SimLoop (its fsyncs and digests, after
// a drawn disk latency), a SimTransport and the Node itself.
//
// crash(): the node's owners hear of it first (clients mark what was in
// flight through it "unknown"); then the Node is destroyed "on its loop"
// (in_loop() true, so Node::stop() runs inline), its loops are killed and
// every task it owned is dropped, and its disk loses what was not synced
// (tearing unsynced tails when asked). start() opens it again from the same
// data directory (Node::open: bootstrap, join-wait or restart).
//
// Thread safety: none; one simulation thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"
#include "sim_cluster/cluster_config.hpp"
#include "sim_cluster/cluster_trace.hpp"
#include "sim_cluster/scheduler.hpp"
#include "sim_cluster/sim_transport.hpp"

namespace nodenomad::sim_cluster {

class ClusterNodes {
 public:
  ClusterNodes(Scheduler& scheduler, SimNetwork& network, ManualClock& clock,
               const Scenario& scenario, const testing::ClusterFaultProfile& profile, Rng rng,
               ClusterTrace& trace);
  ~ClusterNodes();
  ClusterNodes(const ClusterNodes&) = delete;
  ClusterNodes& operator=(const ClusterNodes&) = delete;

  std::uint32_t count() const { return static_cast<std::uint32_t>(slots_.size()); }
  const NodeId& id(std::uint32_t i) const { return slots_[i].id; }
  int index_of(const NodeId& id) const;
  bool up(std::uint32_t i) const { return slots_[i].node != nullptr; }
  // Started at least once (a joiner is started when its join comes).
  bool born(std::uint32_t i) const { return slots_[i].incarnation > 0; }
  std::uint32_t down_count() const;
  // nullptr while down.
  Node* node(std::uint32_t i) { return slots_[i].node.get(); }
  std::uint64_t incarnation(std::uint32_t i) const { return slots_[i].incarnation; }

  // Opens node i from its disk; an error is the run's failure.
  Status start(std::uint32_t i);
  // Power loss now (see above). No-op while down.
  void crash(std::uint32_t i, bool tear, const std::string& why);
  // Node i's next fsync fails (it then fail-stops: failure() turns non-OK).
  void fail_next_sync(std::uint32_t i);

  // Called with the node's index before a crash tears it down.
  std::function<void(std::uint32_t)> on_down;

  std::uint64_t crashes() const { return crashes_; }
  // Targets made to diverge (profile's diverge_probability).
  std::uint64_t divergences() const { return divergences_; }

 private:
  struct Slot {
    NodeId id;
    std::unique_ptr<testing::FaultInjectingFileSystem> disk;
    std::unique_ptr<SimLoop> loop;
    std::unique_ptr<SimLoop> background;
    std::unique_ptr<Transport> transport;
    std::unique_ptr<Node> node;
    std::uint64_t incarnation = 0;
  };
  SimTime disk_latency_us();
  // Before a Verify digest on node i's copy of `shard` at `index`: with the
  // profile's chance, empties one non-empty digest bucket of `state`.
  void maybe_diverge(std::uint32_t i, ShardId shard, LogIndex index, std::uint32_t round,
                     StorageEngine& state);

  Scheduler& scheduler_;
  SimNetwork& network_;
  ManualClock& clock_;
  const Scenario& scenario_;
  testing::ClusterFaultProfile profile_;
  Rng rng_;
  Rng disk_rng_;
  ClusterTrace& trace_;
  std::vector<Slot> slots_;
  // Loops of past incarnations: a dropped closure may still name them.
  std::vector<std::unique_ptr<SimLoop>> dead_loops_;
  std::uint64_t crashes_ = 0;
  Rng diverge_rng_{0};  // forked from rng_ only when divergence is asked for
  std::uint64_t divergences_ = 0;
  // (node, shard) -> the index of its first verify session.
  std::map<std::pair<std::uint32_t, std::uint64_t>, LogIndex> diverge_sessions_;
};

}  // namespace nodenomad::sim_cluster
