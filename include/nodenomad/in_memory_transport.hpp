// InMemoryTransport: the Transport for several nodes inside one process
// (examples/in_process_cluster.cpp, tests). An InMemoryNetwork connects
// them; each node gets its own InMemoryTransport from it.
//
// Delivery: send() hands the envelope straight to the receiver's handler on
// the sender's thread (the handler only queues it, per the Transport
// contract), so envelopes between two nodes arrive in order unless a test
// cuts the link. The network can cut links one way or both (partitions)
// and drop a fraction of envelopes, for tests.
//
// Thread safety: everything may be called from any thread.
// Lifetime: the network must outlive every transport made from it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include "nodenomad/rng.hpp"
#include "nodenomad/transport.hpp"

namespace nodenomad {

class InMemoryTransport;

class InMemoryNetwork {
 public:
  explicit InMemoryNetwork(std::uint64_t seed = 1) : rng_(seed) {}
  InMemoryNetwork(const InMemoryNetwork&) = delete;
  InMemoryNetwork& operator=(const InMemoryNetwork&) = delete;

  // A transport for node `self`; it receives once started.
  std::unique_ptr<InMemoryTransport> connect(const NodeId& self);

  // Envelopes from `from` to `to` are dropped until heal().
  void cut(const NodeId& from, const NodeId& to);
  // Both directions between `a` and `b`.
  void partition(const NodeId& a, const NodeId& b);
  // `node` can reach nobody and nobody reaches it.
  void isolate(const NodeId& node);
  void heal();
  // Drops each envelope with this probability (0 = none).
  void set_drop_probability(double probability);

  std::uint64_t delivered() const;
  std::uint64_t dropped() const;

 private:
  friend class InMemoryTransport;
  void attach(const NodeId& id, TransportHandler* handler);
  void detach(const NodeId& id);
  void deliver(Envelope envelope);

  mutable std::mutex mu_;
  std::map<NodeId, TransportHandler*> handlers_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::set<NodeId> isolated_;
  double drop_probability_ = 0;
  Rng rng_;
  std::uint64_t delivered_ = 0;
  std::uint64_t dropped_ = 0;
};

class InMemoryTransport final : public Transport {
 public:
  InMemoryTransport(InMemoryNetwork& network, NodeId self);
  ~InMemoryTransport() override;

  Status start(TransportHandler& handler) override;
  void stop() override;
  void send(Envelope envelope) override;
  // Addresses mean nothing here: every node attached to the network is
  // reachable by id.
  void set_peer(const NodeId& /*peer*/, std::string /*address*/) override {}
  void remove_peer(const NodeId& /*peer*/) override {}

 private:
  InMemoryNetwork& network_;
  NodeId self_;
  bool started_ = false;
};

}  // namespace nodenomad
