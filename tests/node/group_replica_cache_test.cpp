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
class HintedLog final : public LogStore {
 public:
  explicit HintedLog(std::vector<LogIndex>& releases) : releases_(releases) {}
  LogIndex first_index() const override { return inner_.first_index(); }
  LogIndex last_index() const override { return inner_.last_index(); }
  Result<Term> term_at(LogIndex index) const override { return inner_.term_at(index); }
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                     std::uint64_t max_bytes) const override {
    return inner_.entries(lo, hi, max_bytes);
  }
  HardState hard_state() const override { return inner_.hard_state(); }
  SnapshotMeta snapshot_meta() const override { return inner_.snapshot_meta(); }
  Status append(std::span<const Entry> entries) override { return inner_.append(entries); }
  Status truncate_suffix(LogIndex from) override { return inner_.truncate_suffix(from); }
  Status set_hard_state(const HardState& state) override { return inner_.set_hard_state(state); }
  Status compact(const SnapshotMeta& meta) override { return inner_.compact(meta); }
  Status install_snapshot(const SnapshotMeta& meta) override {
    return inner_.install_snapshot(meta);
  }
  Result<LogIndex> sync() override { return inner_.sync(); }
  void release_cache(LogIndex below) override { releases_.push_back(below); }

 private:
  MemoryLogStore inner_;
  std::vector<LogIndex>& releases_;
};

class Machine final : public StateMachine {
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

TEST_CASE("a replica lets its log drop what it applied, but not what a learner still needs",
          "[node][replica]") {
  std::vector<LogIndex> releases;
  replica_test::QuietHost host;
  auto store = std::make_unique<HintedLog>(releases);
  ConfState conf;
  conf.voters = {NodeId("node-1")};
  REQUIRE(RaftEngine::bootstrap(*store, conf).is_ok());
  ReplicaParts parts;
  auto machine = std::make_shared<Machine>();
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
