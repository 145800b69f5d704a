// Catch2 glue for the raft harness: a cluster whose invariant violations
// fail the running test, and small message predicates.
#pragma once

#include <catch2/catch.hpp>

#include "nodenomad/logging.hpp"
#include "raft/raft_harness.hpp"

namespace nodenomad::raft_test {

inline Cluster make_cluster(const std::vector<NodeId>& voters,
                            const std::vector<NodeId>& learners = {},
                            RaftConfig base = default_config(), std::uint64_t seed = 1) {
  set_log_level(LogLevel::kWarn);  // elections are routine here
  Cluster cluster(voters, learners, std::move(base), seed);
  cluster.on_violation = [](const Status& status) { FAIL(status.to_string()); };
  return cluster;
}

inline auto of_type(MessageType type) {
  return [type](const Message& m) { return m.type == type; };
}

inline auto between(const NodeId& from, const NodeId& to) {
  return [from, to](const Message& m) { return m.from == from && m.to == to; };
}

// Ticks every node and stabilizes, until some node leads or `max_ticks` pass.
inline NodeId tick_until_leader(Cluster& cluster, int max_ticks = 500) {
  for (int i = 0; i < max_ticks; ++i) {
    cluster.tick_all();
    cluster.stabilize();
    const NodeId leader = cluster.leader();
    if (!leader.empty()) return leader;
  }
  return NodeId();
}

}  // namespace nodenomad::raft_test
