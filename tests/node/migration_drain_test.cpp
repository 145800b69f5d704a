// Draining a node while moves onto it wait in the queue: they fail at once,
// naming why, instead of each holding the queue until its stage times out.
#include "migration_test_util.hpp"

namespace nodenomad {
namespace {

using node_test::eventually;
using node_test::migrate;
using node_test::node;
using node_test::start_with_joiner;
using node_test::status_of;
using node_test::TestCluster;
using node_test::wait_for;
using node_test::wait_for_stage;
using node_test::wait_until_ended;

TEST_CASE("migration: moves queued onto a node that is then drained fail at once, with the reason",
          "[node][migration][drain]") {
  TestCluster cluster(4);
  // One move at a time, and a stage timeout far beyond the test's wait: a
  // queued move that only timed out would not end in time.
  start_with_joiner(cluster, [](NodeOptions& o) {
    o.max_concurrent_migrations = 1;
    o.migration_timeout_ms = 120'000;
  });
  for (int i = 0; i < 20; ++i) {
    REQUIRE(cluster.put_until_ok(1, "drain-" + std::to_string(i), "v").status.is_ok());
  }
  // The first move takes the one slot (its stream crawls at 1 kB/s) and is
  // held there, paused.
  Result<MigrationBatch> first = migrate(cluster.at(1), ShardId(1), 2, 4, 1'000);
  REQUIRE(first.is_ok());
  const std::string held = first->operations.at(0);
  wait_for_stage(cluster, 1, held, MigrationStage::kTransfer);
  auto control = [&](const std::string& id, MigrationControl c) {
    return wait_for<MigrationStatus>(
        [&](auto done) { cluster.at(1).control_migration(id, c, 0, std::move(done)); });
  };
  REQUIRE(control(held, MigrationControl::kPause).is_ok());
  // Two more onto node-4 wait behind it.
  std::vector<std::string> queued;
  for (const ShardId shard : {ShardId(2), ShardId(3)}) {
    Result<MigrationBatch> b = migrate(cluster.at(1), shard, 3, 4);
    INFO(b.status().to_string());
    REQUIRE(b.is_ok());
    queued.push_back(b->operations.at(0));
  }
  for (const std::string& id : queued) {
    Result<MigrationStatus> s = status_of(cluster.at(1), id);
    REQUIRE(s.is_ok());
    CHECK(s->queued);
  }

  Result<MigrationBatch> drain = wait_for<MigrationBatch>(
      [&](auto done) { cluster.at(1).drain_node(node(4), std::move(done)); });
  INFO(drain.status().to_string());
  REQUIRE(drain.is_ok());
  // Free the slot: the queued moves start, one after the other.
  REQUIRE(control(held, MigrationControl::kCancel).is_ok());
  CHECK(wait_until_ended(cluster, 1, held, std::chrono::seconds(30)).stage ==
        MigrationStage::kCancelled);
  for (const std::string& id : queued) {
    const MigrationStatus end = wait_until_ended(cluster, 1, id, std::chrono::seconds(30));
    INFO(id << ": " << end.error);
    CHECK(end.stage == MigrationStage::kFailed);
    // Drained, or already gone from the member list once it held nothing.
    const bool named = end.error.find("node-4 is being drained") != std::string::npos ||
                       end.error.find("node-4 is no longer a member") != std::string::npos;
    CHECK(named);
    CHECK(end.error.find("made no progress") == std::string::npos);
  }
  // node-4 held nothing but the cancelled move's learner: it leaves.
  CHECK(eventually([&] { return cluster.at(1).metadata()->find_member(node(4)) == nullptr; },
                   std::chrono::seconds(30)));
  for (int i = 0; i < 20; ++i) {
    const KvReply got = cluster.at(2).get("drain-" + std::to_string(i)).get();
    INFO(got.status.to_string());
    CHECK(got.status.is_ok());
  }
}

}  // namespace
}  // namespace nodenomad
