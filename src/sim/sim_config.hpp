// Drawing one run's configuration from its seed: the Raft knobs and the
// node runtime's (segment sizes, compaction cadence, disk latency). The
// fault profile's own draw is SimFaultProfile::draw (simulator.hpp).
#pragma once

#include <string>

#include "nodenomad/raft/raft_config.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/testing/simulator.hpp"
#include "sim/sim_node.hpp"

namespace nodenomad::sim {

// Timeouts of 10 ticks; pre-vote, check-quorum and the read mode vary, and
// the flow-control and snapshot bounds are often tiny so that their edges
// are exercised (several chunks per snapshot, pipelines that fill up).
RaftConfig draw_raft_config(Rng& rng);
std::string describe_raft_config(const RaftConfig& config);

SimNodeConfig draw_node_config(Rng& rng, const RaftConfig& raft,
                               const testing::SimFaultProfile& profile);

}  // namespace nodenomad::sim
