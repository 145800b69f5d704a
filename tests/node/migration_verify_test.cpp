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
#include "node/migration_wire.hpp"
#include "storage/digest_test_util.hpp"

namespace nodenomad {
namespace {

using node_test::eventually;
using node_test::HandPeer;
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
      o.before_verify_digest_for_testing = [this](ShardId s, LogIndex, std::uint32_t round,
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

TEST_CASE("migration: a late Verify call after promotion starts no new hold",
          "[node][migration][verify]") {
  // Verify calls can arrive after the move went on to Update: delayed or
  // duplicated, or passed to a new shard leader that has no session. Each
  // used to start a new digest, holding the target's apply (as a voter,
  // perhaps a leader) for MIGRATION_TIMEOUT; the whole-node simulation
  // found it.
  VerifyFixture f(/*every_round=*/false);
  const int source = non_coordinator(f.cluster);
  Result<MigrationBatch> batch = migrate(f.cluster.at(3), f.shard, source, 4);
  REQUIRE(batch.is_ok());
  const std::string op = batch->operations.at(0);
  const MigrationStatus end = wait_until_ended(f.cluster, 1, op);
  INFO(end.error);
  REQUIRE(end.stage == MigrationStage::kDone);

  HandPeer peer(f.cluster.network, NodeId("late-caller"));
  // The target: a hold for the promoted operation is refused, whatever the
  // index (far ahead here, so that only the operation's state refuses it).
  node::TargetCall hold{op, f.shard, node::TargetAction::kHold, LogIndex(1'000'000), {}, {}};
  node::RpcRequest to_target;
  to_target.op = node::RpcOp::kMigrateTarget;
  to_target.value = node::encode_target_call(hold);
  Result<node::RpcResponse> held = peer.call(node(4), to_target);
  REQUIRE(held.is_ok());
  INFO(held->reply.status.to_string());
  CHECK(held->reply.status.is(StatusCode::kAborted));
  CHECK(std::string(held->reply.status.message()).find("past Verify") != std::string::npos);

  // The shard's leader: a Verify call for a target that votes starts nothing.
  node::ShardCall verify{op, f.shard, node::ShardAction::kVerify, node(source), node(4), 0, false};
  node::RpcRequest to_leader;
  to_leader.op = node::RpcOp::kMigrateShard;
  to_leader.value = node::encode_shard_call(verify);
  std::optional<node::ShardReport> report;
  REQUIRE(eventually([&] {
    for (int i = 1; i <= 4 && !report; ++i) {
      if (i == source) continue;
      Result<node::RpcResponse> r = peer.call(node(i), to_leader);
      if (!r.is_ok() || !r->reply.status.is_ok()) continue;  // not the leader
      Result<node::ShardReport> decoded = node::decode_shard_report(r->reply.value);
      if (decoded.is_ok()) report = *decoded;
    }
    return report.has_value();
  }));
  INFO(report->note);
  CHECK(report->note.find("is a voter; Verify has ended") != std::string::npos);
  CHECK(report->verify == node::VerifyState::kNone);
  // node-4 applies on: a write through it reads back from its own copy.
  REQUIRE(f.cluster.put_until_ok(4, f.still_keys[1], "after").status.is_ok());
  CHECK(eventually([&] { return f.local_read(f.still_keys[1]).value == "after"; }));
}

TEST_CASE("migration: a duplicated hold or repair keeps its verify session",
          "[node][migration][verify]") {
  // The network may deliver a leader's "hold at L" twice. The second copy
  // used to start the session again: it released the apply hold and, with
  // the replica already at L, aborted the session; or, before L, took a
  // second digest of the round (the simulation found a promotion decided on
  // the first of two digests, with the state changed in between).
  TestCluster cluster(3);
  // No leadership moves: node-3 holds its apply after the index the next
  // write will take, and a new leader's first entry taking that index
  // instead would hold the write (on node-3 as leader, for good). Leader
  // spreading handed shard 2 to node-3 just so, once, under ASan in CI.
  for (int i = 1; i <= 3; ++i) {
    cluster.start(i, [](NodeOptions& o) { o.balance_leaders = false; });
  }
  const ShardId shard(2);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 3);
  REQUIRE(cluster.put_until_ok(1, keys[0], "a").status.is_ok());
  // node-3's applied index of the shard, once it has caught up.
  auto applied_on_3 = [&] {
    for (const NodeGroupStatus& g : cluster.at(3).group_status()) {
      if (g.group == group_of_shard(shard)) return g.applied;
    }
    return LogIndex(0);
  };
  LogIndex applied;
  REQUIRE(eventually([&] {
    applied = applied_on_3();
    return applied > LogIndex(0);
  }));

  HandPeer peer(cluster.network, NodeId("leader-stand-in"));
  auto target_call = [&](node::TargetAction action, LogIndex index,
                         std::vector<std::uint32_t> buckets = {},
                         std::vector<std::string> chunks = {}, std::uint32_t round = 0) {
    node::TargetCall call{"dup-op", shard, action, index, std::move(buckets), std::move(chunks),
                          round};
    node::RpcRequest rpc;
    rpc.op = node::RpcOp::kMigrateTarget;
    rpc.value = node::encode_target_call(call);
    Result<node::RpcResponse> r = peer.call(node(3), rpc);
    REQUIRE(r.is_ok());
    return r->reply;
  };
  const LogIndex at = applied.next();
  REQUIRE(target_call(node::TargetAction::kHold, at).status.is_ok());
  // One more write: node-3 applies it (index `at`) and holds there.
  REQUIRE(cluster.put_until_ok(1, keys[1], "b").status.is_ok());
  std::string digest;
  REQUIRE(eventually([&] {
    KvReply polled = target_call(node::TargetAction::kPoll, at);
    if (!polled.status.is_ok()) return false;
    Result<node::TargetReport> report = node::decode_target_report(polled.value);
    if (!report.is_ok() || report->digest.empty()) return false;
    digest = report->digest;
    return true;
  }));
  // The duplicate arrives: the session, its hold and its digest stay.
  const KvReply again = target_call(node::TargetAction::kHold, at);
  INFO(again.status.to_string());
  CHECK(again.status.is_ok());
  const KvReply polled = target_call(node::TargetAction::kPoll, at);
  INFO(polled.status.to_string());
  REQUIRE(polled.status.is_ok());
  Result<node::TargetReport> report = node::decode_target_report(polled.value);
  REQUIRE(report.is_ok());
  CHECK(report->digest == digest);
  CHECK(report->applied == at);  // still held

  // A repair of round 1 (one bucket, emptied), then the same repair again:
  // the round stays 1. Twice applied, it would be 2, and the leader, which
  // waits for round 1, would ignore every digest until the stage timed out.
  const std::vector<std::uint32_t> bucket = {0};
  const std::vector<std::string> chunks = digest_test::forge_export(at, 0, bucket, {});
  auto round_on_target = [&] {
    const KvReply r = target_call(node::TargetAction::kPoll, at);
    if (!r.status.is_ok()) return std::optional<std::uint32_t>();
    Result<node::TargetReport> decoded = node::decode_target_report(r.value);
    if (!decoded.is_ok() || decoded->digest.empty()) return std::optional<std::uint32_t>();
    return std::optional<std::uint32_t>(decoded->round);
  };
  REQUIRE(target_call(node::TargetAction::kRepair, at, bucket, chunks, 1).status.is_ok());
  REQUIRE(eventually([&] { return round_on_target() == 1u; }));
  const KvReply repeated = target_call(node::TargetAction::kRepair, at, bucket, chunks, 1);
  INFO(repeated.status.to_string());
  CHECK(repeated.status.is_ok());
  CHECK(round_on_target() == 1u);
  CHECK(target_call(node::TargetAction::kRelease, at).status.is_ok());
}

}  // namespace
}  // namespace nodenomad
