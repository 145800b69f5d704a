// A replica created empty for a move (its node may have held the shard
// before, moved it away and dropped it) neither votes nor takes a snapshot
// that names it a voter until it has a configuration: the node side of
// docs/simulation.md's findings for seeds 10474 and 760129.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "node/group_replica.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/node.hpp"

namespace nodenomad::node {
namespace {

const NodeId kSelf("node-1");

// Applies anything; a restore takes whatever it is sent.
class RestoringMachine final : public StateMachine {
 public:
  Result<std::string> apply(LogIndex index, std::string_view /*command*/) override {
    applied_ = index;
    return std::string();
  }
  LogIndex last_applied_index() const override { return applied_; }
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override {
    return Status::not_supported("no snapshots from here");
  }
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index) override {
    ++restores_begun;
    return std::unique_ptr<SnapshotSink>(std::make_unique<Sink>(*this, index));
  }

  int restores_begun = 0;

 private:
  class Sink final : public SnapshotSink {
   public:
    Sink(RestoringMachine& m, LogIndex index) : m_(m), index_(index) {}
    Status write_chunk(std::string_view /*chunk*/) override { return Status::ok(); }
    Status finish() override {
      m_.applied_ = index_;
      return Status::ok();
    }

   private:
    RestoringMachine& m_;
    LogIndex index_;
  };
  LogIndex applied_;
};

class Host final : public ReplicaHost {
 public:
  void send_raft(GroupId /*group*/, Message message) override { sent.push_back(message); }
  void request_sync(GroupReplica& /*replica*/) override { sync_asked = true; }
  void on_replica_failed(GroupId /*group*/, const Status& /*why*/) override {}
  void on_soft_state(GroupId /*group*/, const SoftState& /*soft*/) override {}
  void on_applied(GroupId /*group*/) override {}

  std::vector<Message> sent;
  bool sync_asked = false;
};

struct EmptyReplica {
  EmptyReplica() {
    ReplicaParts parts;
    parts.log_store = std::make_unique<MemoryLogStore>();
    parts.state_machine = machine;
    parts.learner_first = true;
    RaftConfig config = NodeOptions::default_raft_config();
    config.id = kSelf;
    Result<std::unique_ptr<GroupReplica>> opened =
        GroupReplica::open(GroupId(4), config, std::move(parts), ReplicaLimits{}, Rng(3), host);
    REQUIRE(opened.is_ok());
    replica = std::move(*opened);
  }

  void settle() {
    while (host.sync_asked) {
      host.sync_asked = false;
      replica->on_synced(replica->log_store().sync());
    }
  }

  std::shared_ptr<RestoringMachine> machine = std::make_shared<RestoringMachine>();
  Host host;
  std::unique_ptr<GroupReplica> replica;
};

Message snapshot_from(const NodeId& leader, ConfState conf) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = leader;
  m.to = kSelf;
  m.term = Term(2);
  m.snapshot.meta = SnapshotMeta{LogIndex(3), Term(1), std::move(conf)};
  m.snapshot.transfer_id = 11;
  m.snapshot.offset = 0;
  m.snapshot.last = true;
  return m;
}

TEST_CASE("group replica: a replica created empty does not vote", "[node][rejoin]") {
  EmptyReplica r;
  for (MessageType type : {MessageType::kPreVote, MessageType::kVote}) {
    Message vote;
    vote.type = type;
    vote.from = NodeId("node-2");
    vote.to = kSelf;
    vote.term = Term(5);
    vote.index = LogIndex(3);
    vote.log_term = Term(1);
    r.replica->step(vote);
    r.settle();
  }
  CHECK(r.host.sent.empty());
  CHECK(r.replica->engine().term() == Term(0));
}

TEST_CASE("group replica: a replica created empty takes no snapshot that names it a voter",
          "[node][rejoin]") {
  EmptyReplica r;
  // From before its node left the group: node-1 a voter.
  ConfState old_conf;
  old_conf.voters = {kSelf, NodeId("node-2"), NodeId("node-3")};
  r.replica->step(snapshot_from(NodeId("node-3"), old_conf));
  r.settle();
  CHECK(r.machine->restores_begun == 0);
  CHECK(r.host.sent.empty());
  CHECK(r.replica->engine().conf_state() == ConfState{});
  CHECK(r.replica->engine().term() == Term(0));
  // A joint configuration that is taking it out is as old.
  ConfState leaving;
  leaving.voters = {NodeId("node-2"), NodeId("node-3"), NodeId("node-4")};
  leaving.voters_outgoing = old_conf.voters;
  r.replica->step(snapshot_from(NodeId("node-3"), leaving));
  r.settle();
  CHECK(r.machine->restores_begun == 0);
  CHECK(r.replica->engine().conf_state() == ConfState{});

  // The configuration that added it back, as a learner, is taken.
  ConfState now;
  now.voters = {NodeId("node-2"), NodeId("node-3"), NodeId("node-4")};
  now.learners = {kSelf};
  r.replica->step(snapshot_from(NodeId("node-3"), now));
  r.settle();
  CHECK(r.machine->restores_begun == 1);
  CHECK(r.replica->engine().conf_state() == now);
  CHECK(r.replica->engine().last_index() == LogIndex(3));
  REQUIRE_FALSE(r.host.sent.empty());
  CHECK(r.host.sent.back().type == MessageType::kSnapshotResponse);
  CHECK_FALSE(r.host.sent.back().reject);
  // A learner does not campaign.
  CHECK_FALSE(r.replica->campaign().is_ok());
}

}  // namespace
}  // namespace nodenomad::node
