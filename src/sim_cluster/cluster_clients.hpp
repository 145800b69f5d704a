// The simulated clients of a whole-node simulation: each issues one key-value
// operation at a time (put, linearizable or lease get, remove, and the
// compare-and-set forms of put and remove) through a random live node's
// ClientApi, and records it in a History for the linearizability checker.
//
// The answers map onto the history as docs/linearizability.md says: OK,
// NotFound and VersionMismatch are ok answers; Timeout is unknown; every
// other error (Unavailable, Failed, InvalidArgument) is "not applied", a
// fail. An operation in flight through a node that crashes is unknown (its
// answer never comes), and so is one with no answer by the client's own
// deadline (the node's request deadline plus a margin).
//
// Thread safety: none; one simulation thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nodenomad/client_api.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/testing/history.hpp"
#include "sim_cluster/cluster_config.hpp"
#include "sim_cluster/cluster_nodes.hpp"
#include "sim_cluster/cluster_trace.hpp"
#include "sim_cluster/scheduler.hpp"

namespace nodenomad::sim_cluster {

struct ClientStats {
  std::uint64_t ok = 0;
  std::uint64_t fail = 0;
  std::uint64_t unknown = 0;
};

class ClusterClients {
 public:
  ClusterClients(Scheduler& scheduler, ClusterNodes& nodes, const Scenario& scenario,
                 std::uint32_t count, Rng rng, ClusterTrace& trace,
                 testing::ClusterSimBug bug = testing::ClusterSimBug::kNone);

  // Every client starts its first operation soon.
  void start();
  // No new operation after the current ones.
  void stop_issuing() { issuing_ = false; }
  // Operations in flight through `node` become unknown.
  void on_node_down(std::uint32_t node);
  bool idle() const;

  const testing::History& history() const { return history_; }
  const ClientStats& stats() const { return stats_; }

 private:
  struct Client {
    bool busy = false;
    testing::OpId op = 0;
    testing::KvOpKind kind = testing::KvOpKind::kGet;
    std::uint32_t via = 0;
    std::uint64_t token = 0;  // tells this attempt's answer from a stale one
    std::uint64_t written = 0;
    std::map<std::string, std::uint64_t> versions;  // last version seen per key
  };

  void schedule_next(std::uint32_t c, SimTime delay_us);
  void issue(std::uint32_t c);
  void answer(std::uint32_t c, std::uint64_t token, KvReply reply);
  void end_unknown(std::uint32_t c, const char* why);
  std::uint64_t version_guess(Client& client, const std::string& key);

  Scheduler& scheduler_;
  ClusterNodes& nodes_;
  const Scenario& scenario_;
  Rng rng_;
  ClusterTrace& trace_;
  std::vector<Client> clients_;
  testing::History history_;
  ClientStats stats_;
  testing::ClusterSimBug bug_;
  bool issuing_ = true;
  std::uint64_t next_token_ = 1;
};

}  // namespace nodenomad::sim_cluster
