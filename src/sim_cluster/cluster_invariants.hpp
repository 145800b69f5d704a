// The invariants of a whole-node simulation that hold at every instant,
// checked on every metadata view a node applies (the simulator hands each
// new view of each live node to observe() after every scheduler step):
//
//   - one owner set per shard per epoch: every view that shows shard s at
//     epoch e shows the same voters and learners (docs/migration.md, "Safety
//     arguments"), across all nodes and all incarnations;
//   - placements are well formed: R distinct voters, at most one learner,
//     and a learner only while an operation that targets it runs;
//   - at most one operation per shard past Prepare (two may start at once:
//     the placement's epoch stops all but one at Prepare);
//   - a node's applied view only moves forward while it runs: no shard's
//     epoch goes back within one incarnation;
//   - an operation's record is one value per version, and its versions tell
//     a legal story: the stage never goes back, nothing follows an end,
//     a rollback happens only before Update and ends failed or cancelled;
//   - an operation that ended `done` left its target a voter and its source
//     out (checked in the view where `done` first shows, unless a later
//     operation on the shard already reached Update there).
//
// Thread safety: none; one simulation thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "node/migration_wire.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"

namespace nodenomad::sim_cluster {

class ClusterInvariants {
 public:
  explicit ClusterInvariants(std::uint32_t replication_factor) : replication_factor_(replication_factor) {}

  // Checks `view`, applied by node `node` in its incarnation `incarnation`.
  // Answers the first violation found; empty when all hold.
  std::string observe(std::uint32_t node, std::uint64_t incarnation, const ClusterMetadata& view);

  // Called once per operation record version, the first time any node's view
  // shows it.
  std::function<void(const node::MigrationRecord& record)> on_new_record;

  // The newest version seen of every operation, by id.
  const std::map<std::string, node::MigrationRecord>& newest() const { return newest_; }
  std::uint64_t views_checked() const { return views_checked_; }

 private:
  struct Owners {
    std::vector<NodeId> replicas;
    std::vector<NodeId> learners;
  };
  struct NodeEpochs {
    std::uint64_t incarnation = 0;
    std::vector<Epoch> epochs;
  };
  std::string check_placements(std::uint32_t node, std::uint64_t incarnation,
                               const ClusterMetadata& view);
  std::string check_records(const ClusterMetadata& view,
                            std::vector<node::MigrationRecord>& records);
  std::string check_record_order(const node::MigrationRecord& r, std::uint64_t version);
  std::string check_live_operations(const ClusterMetadata& view,
                                    const std::vector<node::MigrationRecord>& records);
  std::string check_done(const ClusterMetadata& view,
                         const std::vector<node::MigrationRecord>& records);

  std::uint32_t replication_factor_;
  std::map<std::pair<std::uint32_t, std::uint64_t>, Owners> owners_;  // (shard, epoch)
  std::map<std::uint32_t, NodeEpochs> node_epochs_;
  // Every version seen of every operation: encoded bytes and decoded stage.
  std::map<std::string, std::map<std::uint64_t, node::MigrationRecord>> versions_;
  std::map<std::pair<std::string, std::uint64_t>, std::string> version_bytes_;
  std::map<std::string, node::MigrationRecord> newest_;
  std::set<std::string> done_checked_;
  std::uint64_t views_checked_ = 0;
};

// "m17-s3" -> 17 (0 when the id has another form).
std::uint64_t migration_batch_seq(const std::string& op_id);

}  // namespace nodenomad::sim_cluster
