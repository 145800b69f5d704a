// Simulator: testing::SimControl, the hook through which an embedding host
// watches a run and acts at chosen moments (crash the leader, restart a
// node, start an election, end the run early).
#include <fmt/format.h>

#include "sim/simulator_impl.hpp"

namespace nodenomad::sim {

std::uint32_t Simulator::node_count() const {
  return static_cast<std::uint32_t>(nodes_.size());
}

const NodeId& Simulator::node_id(std::uint32_t node) const {
  NN_ASSERT(node < nodes_.size(), "node ", node, " of ", nodes_.size());
  return nodes_[node]->id();
}

const RaftEngine* Simulator::engine(std::uint32_t node) const {
  NN_ASSERT(node < nodes_.size(), "node ", node, " of ", nodes_.size());
  return nodes_[node]->engine();
}

void Simulator::crash(std::uint32_t node) {
  NN_ASSERT(node < nodes_.size(), "node ", node, " of ", nodes_.size());
  crash_node(node, /*tear=*/false, "crashed by the host");
}

void Simulator::restart(std::uint32_t node) {
  NN_ASSERT(node < nodes_.size(), "node ", node, " of ", nodes_.size());
  restart_node(node);
}

Status Simulator::campaign(std::uint32_t node) {
  NN_ASSERT(node < nodes_.size(), "node ", node, " of ", nodes_.size());
  const Status s = nodes_[node]->campaign();
  note(TraceCode::kFault, node, fmt::format("the host has n{} campaign: {}", node + 1,
                                            s.to_string()));
  return s;
}

void Simulator::schedule(std::uint64_t at_us, std::function<void(testing::SimControl&)> action) {
  NN_ASSERT(at_us >= now_, "a host action scheduled in the past: ", at_us, " < ", now_);
  NN_ASSERT(host_actions_.size() < kMaxHostActions, "more than ", kMaxHostActions,
            " host actions waiting");
  const std::uint64_t id = next_host_action_++;
  host_actions_.emplace(id, std::move(action));
  SimEvent e;
  e.time = at_us;
  e.kind = EventKind::kHostAction;
  e.arg = id;
  // Not schedule(SimEvent): that one may drop an event when the queue is
  // full, which is acceptable for a message but not for the host's action.
  const bool pushed = queue_.push(std::move(e));
  NN_ASSERT(pushed, "the event queue is full (", EventQueue::kMaxPendingEvents, " events)");
}

void Simulator::run_host_action(std::uint64_t id) {
  auto it = host_actions_.find(id);
  NN_ASSERT(it != host_actions_.end(), "host action ", id, " is unknown");
  const std::function<void(testing::SimControl&)> action = std::move(it->second);
  host_actions_.erase(it);
  action(*this);
}

}  // namespace nodenomad::sim
