// Verify between Nodes (docs/migration.md, "Execution"): a target whose copy
// of the shard diverged from its leader's is found by the digests, repaired
// bucket by bucket, and promoted only once the digests match; one that stays
// diverged is never promoted, and the move rolls back with the reason.
//
// The divergence is made on purpose: NodeOptions's
// before_verify_digest_for_testing replaces one digest bucket of the
// target's state (at its held verify index) with a forged export holding
// one key with a wrong value, so the rest of that bucket's keys go missing.
#include <atomic>
#include <mutex>

#include "migration_test_util.hpp"
#include "storage/digest_test_util.hpp"

namespace nodenomad {
namespace {

using node_test::eventually;
using node_test::info_of;
using node_test::keys_of_shard;
using node_test::metric;
using node_test::migrate;
using node_test::node;
using node_test::non_coordinator;
using node_test::start_with_joiner;
using node_test::TestCluster;
using node_test::wait_for;
using node_test::wait_until_ended;
using node_test::Writer;

// What the hook did on the target's loop; read by the test's thread.
struct Divergence {
  std::string key;        // the one key the forged bucket holds
  std::uint32_t bucket = 0;
  bool every_round = false;  // false: only before the first digest
  std::atomic<std::uint32_t> digests{0};    // digests the target took
  std::atomic<std::uint32_t> corrupted{0};  // of them, taken after a corruption
  std::mutex mu;
  std::vector<std::string> errors;  // the hook cannot use Catch off the test thread

  void operator()(ShardId, std::uint32_t round, StorageEngine& state) {
    ++digests;
    if (round > 0 && !every_round) return;
    Result<std::shared_ptr<const StateCapture>> capture = state.capture();
    Status s = capture.status();
    if (s.is_ok()) {
      const std::vector<std::uint32_t> buckets = {bucket};
      s = state.replace_buckets(
          buckets, digest_test::forge_export((*capture)->index(), (*capture)->version_floor(),
                                             buckets, {{key, "diverged", 1}}));
    }
    if (s.is_ok()) {
      ++corrupted;
    } else {
      std::lock_guard lock(mu);
      errors.push_back(s.to_string());
    }
  }
  std::vector<std::string> hook_errors() {
    std::lock_guard lock(mu);
    return errors;
  }
};

// The shard under test: keys a writer overwrites during the move, and keys
// written once before it, one of which is the key of the forged bucket.
struct VerifyFixture {
  explicit VerifyFixture(bool every_round) {
    std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 60);
    busy_keys.assign(keys.begin(), keys.begin() + 30);
    still_keys.assign(keys.begin() + 30, keys.end());
    divergence.key = still_keys[0];
    divergence.bucket = digest_bucket(divergence.key);
    divergence.every_round = every_round;
    // Other still keys in the same bucket go missing on the target.
    for (const std::string& key : still_keys) {
      if (digest_bucket(key) == divergence.bucket) ++keys_in_bucket;
    }
    start_with_joiner(cluster, [this](NodeOptions& o) {
      if (o.id != node(4)) return;
      o.before_verify_digest_for_testing = [this](ShardId s, std::uint32_t round,
                                                  StorageEngine& state) {
        if (s == shard) divergence(s, round, state);
      };
    });
    for (std::size_t i = 0; i < still_keys.size(); ++i) {
      REQUIRE(cluster.put_until_ok(2, still_keys[i], "still-" + std::to_string(i)).status.is_ok());
    }
    for (std::size_t i = 0; i < 200; ++i) {
      const std::string& key = busy_keys[i % busy_keys.size()];
      REQUIRE(cluster.put_until_ok(2, key, std::string(100, 'v')).status.is_ok());
    }
  }

  int coordinator() {
    Result<ClusterInfo> info = info_of(cluster.at(1));
    REQUIRE(info.is_ok());
    for (int i = 1; i <= 4; ++i) {
      if (info->metadata_leader == node(i)) return i;
    }
    FAIL("no metadata leader");
    return 0;
  }

  // Reads `key` from node-4's own copy (a stale read is served locally).
  KvReply local_read(const std::string& key) {
    GetOptions stale;
    stale.consistency = ReadConsistency::kStale;
    return cluster.at(4).get(key, stale).get();
  }

  Result<ShardDigest> digest_on(int i) {
    return wait_for<ShardDigest>(
        [&](auto done) { cluster.at(i).shard_digest(shard, std::move(done)); });
  }

  const ShardId shard{3};
  Divergence divergence;  // declared first: the nodes calling it stop before it goes
  TestCluster cluster{4};
  std::vector<std::string> busy_keys;
  std::vector<std::string> still_keys;
  std::size_t keys_in_bucket = 0;
};

TEST_CASE("migration: Verify repairs a diverged target's bad bucket, then promotes it",
          "[node][migration][verify]") {
  VerifyFixture f(/*every_round=*/false);
  INFO("forged bucket " << f.divergence.bucket << " (" << f.keys_in_bucket << " still keys)");
  const int source = non_coordinator(f.cluster);
  Writer writer(f.cluster.at(2), f.busy_keys);
  REQUIRE(eventually([&] { return writer.writes() > 20; }));

  Result<MigrationBatch> batch = migrate(f.cluster.at(3), f.shard, source, 4);
  INFO(batch.status().to_string());
  REQUIRE(batch.is_ok());
  const MigrationStatus end = wait_until_ended(f.cluster, 1, batch->operations.at(0));
  writer.stop();

  INFO(end.error);
  REQUIRE(end.stage == MigrationStage::kDone);
  CHECK(writer.errors().empty());
  CHECK(f.divergence.hook_errors().empty());
  // One corruption, one bad bucket found and re-sent, one more digest that
  // matched.
  CHECK(f.divergence.corrupted == 1);
  CHECK(f.divergence.digests == 2);
  CHECK(end.verify_mismatches == 1);
  CHECK(metric(f.cluster.at(f.coordinator()), "nodenomad_migration_verify_mismatches_total") ==
        1);

  // node-4 serves the leader's records: the wrong value is gone and the keys
  // the forged bucket dropped are back.
  for (std::size_t i = 0; i < f.still_keys.size(); ++i) {
    const KvReply got = f.local_read(f.still_keys[i]);
    INFO("key " << f.still_keys[i] << ": " << got.status.to_string());
    REQUIRE(got.status.is_ok());
    CHECK(got.value == "still-" + std::to_string(i));
  }
  // And its whole copy equals the other replicas' once they applied the same
  // entries (the writer has stopped).
  Result<ClusterInfo> info = info_of(f.cluster.at(1));
  REQUIRE(info.is_ok());
  const ShardInfo& placed = info->shards[f.shard.value()];
  REQUIRE(std::find(placed.replicas.begin(), placed.replicas.end(), node(4)) !=
          placed.replicas.end());
  for (const NodeId& other : placed.replicas) {
    if (other == node(4)) continue;
    const int i = std::stoi(other.str().substr(std::string("node-").size()));
    ShardDigest theirs, ours;
    CHECK(eventually([&] {
      Result<ShardDigest> a = f.digest_on(i);
      Result<ShardDigest> b = f.digest_on(4);
      if (!a.is_ok() || !b.is_ok()) return false;
      theirs = *a;
      ours = *b;
      return theirs.index == ours.index && theirs == ours;
    }));
    INFO(other.str() << " at " << theirs.index.value() << ", node-4 at " << ours.index.value());
    CHECK(ours.differing_buckets(theirs).empty());
  }
}

TEST_CASE("migration: a target still diverged after every repair is never promoted",
          "[node][migration][verify]") {
  VerifyFixture f(/*every_round=*/true);
  Result<ClusterInfo> before = info_of(f.cluster.at(1));
  REQUIRE(before.is_ok());
  const int source = non_coordinator(f.cluster);

  Result<MigrationBatch> batch = migrate(f.cluster.at(3), f.shard, source, 4);
  INFO(batch.status().to_string());
  REQUIRE(batch.is_ok());
  const MigrationStatus end = wait_until_ended(f.cluster, 1, batch->operations.at(0));

  INFO(end.error);
  CHECK(end.stage == MigrationStage::kFailed);
  CHECK(end.error.find("verify failed") != std::string::npos);
  CHECK(end.error.find("still differ in 1 buckets after 3 repairs") != std::string::npos);
  CHECK(f.divergence.hook_errors().empty());
  // The first digest and one after each of the 3 repairs, all diverged.
  CHECK(f.divergence.digests == 4);
  CHECK(f.divergence.corrupted == 4);
  CHECK(end.verify_mismatches == 3);

  // Rolled back: the ShardMap has the replicas it had, node-4 drops its copy.
  Result<ClusterInfo> after = info_of(f.cluster.at(1));
  REQUIRE(after.is_ok());
  const ShardInfo& s = after->shards[f.shard.value()];
  CHECK(s.replicas == before->shards[f.shard.value()].replicas);
  CHECK(s.learners.empty());
  CHECK(eventually([&] { return !node_test::hosts_group(f.cluster.at(4), f.shard); }));
  // The shard's data is intact and it still takes writes.
  for (std::size_t i = 0; i < f.still_keys.size(); ++i) {
    const KvReply got = f.cluster.at(4).get(f.still_keys[i]).get();
    INFO("key " << f.still_keys[i] << ": " << got.status.to_string());
    REQUIRE(got.status.is_ok());
    CHECK(got.value == "still-" + std::to_string(i));
  }
  CHECK(f.cluster.put_until_ok(4, f.still_keys[0], "after").status.is_ok());
}

}  // namespace
}  // namespace nodenomad
