// Regressions the whole-node simulation found, pinned down below the
// simulation where a seed would be too fragile a witness (docs/simulation.md,
// "Findings").
#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <vector>

#include "node/group_replica.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/storage/storage_engine.hpp"

namespace nodenomad::node {
namespace {

// Collects what a replica sends; syncs when asked.
class RecordingHost final : public ReplicaHost {
 public:
  void send_raft(GroupId /*group*/, Message message) override { sent.push_back(std::move(message)); }
  void request_sync(GroupReplica& /*replica*/) override { sync_asked = true; }
  void on_replica_failed(GroupId /*group*/, const Status& /*why*/) override {}
  void on_soft_state(GroupId /*group*/, const SoftState& /*soft*/) override {}
  void on_applied(GroupId /*group*/) override {}

  std::vector<Message> sent;
  bool sync_asked = false;
};

struct Replica {
  explicit Replica(const std::optional<ConfState>& bootstrap) {
    auto store = std::make_unique<MemoryLogStore>();
    if (bootstrap) REQUIRE(RaftEngine::bootstrap(*store, *bootstrap).is_ok());
    StorageOptions so;
    so.mode = StorageMode::kReplicated;  // no dir: in memory
    Result<std::unique_ptr<StorageEngine>> engine = StorageEngine::open(so);
    REQUIRE(engine.is_ok());
    ReplicaParts parts;
    parts.log_store = std::move(store);
    parts.state_machine = std::shared_ptr<StorageEngine>(std::move(*engine));
    RaftConfig config = NodeOptions::default_raft_config();
    config.id = NodeId("node-1");
    Result<std::unique_ptr<GroupReplica>> opened =
        GroupReplica::open(GroupId(2), config, std::move(parts), ReplicaLimits{}, Rng(1), host);
    REQUIRE(opened.is_ok());
    replica = std::move(*opened);
  }

  // Steps a vote request from a candidate whose log ends at index 32 of
  // term 3, lets the disk finish, and answers the vote responses sent.
  std::vector<Message> ask(MessageType type) {
    Message m;
    m.type = type;
    m.from = NodeId("node-2");
    m.to = NodeId("node-1");
    m.term = Term(5);
    m.index = LogIndex(32);
    m.log_term = Term(3);
    replica->step(m);
    if (host.sync_asked) {
      host.sync_asked = false;
      replica->on_synced(replica->log_store().sync());
    }
    std::vector<Message> answers;
    for (const Message& sent : host.sent) {
      if (sent.type == MessageType::kVoteResponse || sent.type == MessageType::kPreVoteResponse) {
        answers.push_back(sent);
      }
    }
    host.sent.clear();
    return answers;
  }

  RecordingHost host;
  std::unique_ptr<GroupReplica> replica;
};

// Seed 10474 of cluster_sim_soak --duration-ms 30000 --duplicate-requests
// (before the fix): shard 1 moved from node-1 to node-4 while node-2 was
// down, node-1 dropped its copy, then a rebalance moved the shard back to
// node-1, which created an empty replica. node-2 restarted with a log that
// still named node-1 a voter and lacked the committed entries of the move;
// node-1's empty replica granted it a vote, node-2 became leader and
// overwrote an acknowledged write (two writes answered with version 5).
TEST_CASE("a replica created empty grants no vote and no pre-vote", "[sim_cluster][regression]") {
  Replica empty(std::nullopt);
  CHECK(empty.ask(MessageType::kPreVote).empty());
  CHECK(empty.ask(MessageType::kVote).empty());
}

TEST_CASE("a bootstrapped replica still answers votes (control)", "[sim_cluster][regression]") {
  ConfState conf;
  conf.voters = {NodeId("node-1"), NodeId("node-2"), NodeId("node-3")};
  Replica member(conf);
  const std::vector<Message> pre = member.ask(MessageType::kPreVote);
  REQUIRE(pre.size() == 1);
  CHECK_FALSE(pre[0].reject);
  const std::vector<Message> vote = member.ask(MessageType::kVote);
  REQUIRE(vote.size() == 1);
  CHECK_FALSE(vote[0].reject);
}

}  // namespace
}  // namespace nodenomad::node
