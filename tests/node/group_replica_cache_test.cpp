// GroupReplica's log cache hint (LogStore::release_cache): the entries this
// node applied and every peer holds, and never those a learner still needs
// after its snapshot (a shard move's catch-up reads them).
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "node/group_replica.hpp"
#include "node/replica_test_util.hpp"
#include "nodenomad/memory_log_store.hpp"

namespace nodenomad::node {
namespace {

// A MemoryLogStore that notes every release_cache() bound.
class HintedLog final : public LogStoreWrapper {
 public:
  explicit HintedLog(std::vector<LogIndex>& releases)
      : LogStoreWrapper(std::make_unique<MemoryLogStore>()), releases_(releases) {}
  void release_cache(LogIndex below) override { releases_.push_back(below); }

 private:
  std::vector<LogIndex>& releases_;
};

TEST_CASE("a replica lets its log drop what it applied, but not what a learner still needs",
          "[node][replica]") {
  std::vector<LogIndex> releases;
  replica_test::QuietHost host;
  auto store = std::make_unique<HintedLog>(releases);
  ConfState conf;
  conf.voters = {NodeId("node-1")};
  REQUIRE(RaftEngine::bootstrap(*store, conf).is_ok());
  ReplicaParts parts;
  auto machine = std::make_shared<replica_test::AppliesAnything>();
  parts.state_machine = machine;
  parts.log_store = std::move(store);
  RaftConfig config = NodeOptions::default_raft_config();
  config.id = NodeId("node-1");
  auto replica = std::move(GroupReplica::open(GroupId(1), config, std::move(parts),
                                              ReplicaLimits{}, Rng(7), host))
                     .value();
  REQUIRE(replica->campaign().is_ok());
  replica_test::settle(*replica, host.sync_asked);
  REQUIRE(replica->is_leader());
  const auto write = [&](int n) {
    for (int i = 0; i < n; ++i) {
      replica->propose("v", [](Result<std::string> r) { REQUIRE(r.is_ok()); });
      replica_test::settle(*replica, host.sync_asked);
    }
  };

  // Alone: everything applied may go, one hint per tick that moves it.
  write(10);
  replica->tick();
  REQUIRE_FALSE(releases.empty());
  CHECK(releases.back() == machine->last_applied_index().next());
  const std::size_t hints = releases.size();
  replica->tick();
  CHECK(releases.size() == hints);  // nothing new applied: no new hint

  // A learner joins (a shard move's target): it holds nothing yet, so from
  // here on the leader keeps every entry for its catch-up.
  ConfChange add;
  add.changes = {ConfChangeSingle{ConfChangeType::kAddLearner, NodeId("node-2")}};
  REQUIRE(replica->propose_conf_change(add).is_ok());
  replica_test::settle(*replica, host.sync_asked);
  REQUIRE(replica->engine().progress(NodeId("node-2")).has_value());
  const LogIndex before_learner = releases.back();
  write(20);
  for (int i = 0; i < 5; ++i) replica->tick();
  CHECK(machine->last_applied_index() > before_learner);
  CHECK(releases.back() == before_learner);
}

}  // namespace
}  // namespace nodenomad::node
