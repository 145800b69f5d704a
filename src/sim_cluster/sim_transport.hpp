// The simulated network between whole Nodes: each Node gets a Transport
// (one per incarnation) whose send() encodes the envelope (as a byte-carrying
// transport does), draws its fate from the seed — lost, delivered, or
// duplicated, each copy after its own latency, sometimes a long extra delay
// so messages reorder — and schedules the delivery as a task of the
// receiving node. A delivery calls the receiver's TransportHandler::
// on_envelope with the decoded envelope.
//
// Links can be cut one way or both (partitions); a cut is checked when a
// message is sent and again when it arrives, so a message in flight when a
// partition starts is lost too. Messages to a crashed node are lost
// (the scheduler drops its tasks; sends meet no started transport).
// Like AsioTransport after a failed connection, a sender whose message met a
// cut link or a crashed peer is told on_peer_unreachable(peer) once, until a
// message gets through to that peer again.
//
// Thread safety: none; one simulation thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/testing/cluster_simulator.hpp"
#include "nodenomad/transport.hpp"
#include "sim_cluster/cluster_trace.hpp"
#include "sim_cluster/scheduler.hpp"

namespace nodenomad::sim_cluster {

struct NetworkStats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t duplicated = 0;
};

class SimNetwork {
 public:
  SimNetwork(Scheduler& scheduler, Rng rng, testing::ClusterFaultProfile profile,
             ClusterTrace& trace, std::vector<NodeId> ids);
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // A transport for node `index`, for one incarnation.
  std::unique_ptr<Transport> connect(std::uint32_t index);

  // Messages from `from` to `to` are lost until heal().
  void cut(std::uint32_t from, std::uint32_t to);
  void heal();
  bool linked(std::uint32_t from, std::uint32_t to) const;
  std::size_t cut_links() const { return cut_.size(); }
  // The settling phase: no more loss, duplication or long delays.
  void calm_down() { calm_ = true; }
  // Whether node-to-node requests (kRequest envelopes) may be duplicated
  // too, or only Raft messages and responses (ClusterSimOptions).
  void set_duplicate_requests(bool on) { duplicate_requests_ = on; }
  // Every Raft message of `group` goes to the trace (debugging).
  void trace_group(std::uint64_t group) { traced_group_ = group; }

  const NetworkStats& stats() const { return stats_; }
  std::uint32_t node_count() const { return static_cast<std::uint32_t>(ids_.size()); }

 private:
  friend class SimTransport;
  void attach(std::uint32_t index, TransportHandler* handler);
  void detach(std::uint32_t index);
  void send(std::uint32_t from, const Envelope& envelope);
  void deliver(std::uint32_t from, std::uint32_t to, const std::string& bytes);
  void unreachable(std::uint32_t from, std::uint32_t to);
  SimTime latency();
  int index_of(const NodeId& id) const;

  Scheduler& scheduler_;
  Rng rng_;
  testing::ClusterFaultProfile profile_;
  ClusterTrace& trace_;
  std::vector<NodeId> ids_;
  std::vector<TransportHandler*> handlers_;  // by node index; nullptr: not started
  std::set<std::pair<std::uint32_t, std::uint32_t>> cut_;
  std::set<std::pair<std::uint32_t, std::uint32_t>> reported_;  // unreachable told once
  bool calm_ = false;
  bool duplicate_requests_ = true;
  std::optional<std::uint64_t> traced_group_;
  NetworkStats stats_;
};

}  // namespace nodenomad::sim_cluster
