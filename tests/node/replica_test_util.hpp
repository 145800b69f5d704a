// A GroupReplica alone, for tests of its own rules: one voter (node-1) of
// group 1 on a MemoryLogStore, led by the replica, with a host that syncs
// when the test says so.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <utility>

#include "node/group_replica.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/node.hpp"

namespace nodenomad::node::replica_test {

// A state machine that applies anything and holds nothing: the replica's
// own rules are under test, not a state.
class AppliesAnything final : public StateMachine {
 public:
  Result<std::string> apply(LogIndex index, std::string_view /*command*/) override {
    applied_ = index;
    return std::string();
  }
  LogIndex last_applied_index() const override { return applied_; }
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override {
    return Status::not_supported("no snapshots here");
  }
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex /*index*/) override {
    return Status::not_supported("no snapshots here");
  }

 private:
  LogIndex applied_;
};

// A host that only notes a sync request (settle() then syncs) and ignores
// the rest; tests override what they watch.
class QuietHost : public ReplicaHost {
 public:
  void send_raft(GroupId /*group*/, Message /*message*/) override {}
  void request_sync(GroupReplica& /*replica*/) override { sync_asked = true; }
  void on_replica_failed(GroupId /*group*/, const Status& /*why*/) override {}
  void on_soft_state(GroupId /*group*/, const SoftState& /*soft*/) override {}
  void on_applied(GroupId /*group*/) override {}

  bool sync_asked = false;
};

// Syncs the log each time the host was asked to (`sync_asked`), until it is
// not asked again.
inline void settle(GroupReplica& replica, bool& sync_asked) {
  while (sync_asked) {
    sync_asked = false;
    replica.on_synced(replica.log_store().sync());
  }
}

// `parts` without a log store (made here); the replica is leader on return.
inline std::unique_ptr<GroupReplica> open_one_voter_leader(ReplicaParts parts,
                                                           ReplicaLimits limits,
                                                           ReplicaHost& host, bool& sync_asked) {
  auto store = std::make_unique<MemoryLogStore>();
  ConfState conf;
  conf.voters = {NodeId("node-1")};
  REQUIRE(RaftEngine::bootstrap(*store, conf).is_ok());
  parts.log_store = std::move(store);
  RaftConfig config = NodeOptions::default_raft_config();
  config.id = NodeId("node-1");
  Result<std::unique_ptr<GroupReplica>> opened =
      GroupReplica::open(GroupId(1), config, std::move(parts), limits, Rng(7), host);
  REQUIRE(opened.is_ok());
  std::unique_ptr<GroupReplica> replica = std::move(*opened);
  REQUIRE(replica->campaign().is_ok());
  settle(*replica, sync_asked);
  REQUIRE(replica->is_leader());
  return replica;
}

}  // namespace nodenomad::node::replica_test
