// Shard migration between Nodes on the in-memory transport: a move under
// writes through all five stages, cancel and rollback, a stalled stage, the
// coordinator's crash, rebalancing after a join, and the routes clients use
// during and after a move.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "migration_test_util.hpp"
#include "node/node_rpc.hpp"
#include "nodenomad/migration/migration_engine.hpp"
#include "nodenomad/sharding/key_to_shard.hpp"

namespace nodenomad {
namespace {

using node_test::eventually;
using node_test::HandPeer;
using node_test::hosts_group;
using node_test::info_of;
using node_test::keys_of_shard;
using node_test::metric;
using node_test::migrate;
using node_test::node;
using node_test::non_coordinator;
using node_test::start_with_joiner;
using node_test::status_of;
using node_test::TestCluster;
using node_test::wait_for;
using node_test::wait_for_stage;
using node_test::wait_until_ended;
using node_test::Writer;

TEST_CASE("migration: a replica moves to a new node under writes, through all five stages",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster);
  const ShardId shard(3);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 40);
  for (std::size_t i = 0; i < 400; ++i) {
    REQUIRE(cluster.put_until_ok(2, keys[i % keys.size()], std::string(200, 'a')).status.is_ok());
  }
  const int source = non_coordinator(cluster);
  Writer writer(cluster.at(2), keys);
  REQUIRE(eventually([&] { return writer.writes() > 20; }));

  Result<MigrationBatch> batch = migrate(cluster.at(3), shard, source, 4);
  INFO(batch.status().to_string());
  REQUIRE(batch.is_ok());
  REQUIRE(batch->operations.size() == 1);
  const MigrationStatus end = wait_until_ended(cluster, 1, batch->operations[0]);
  const std::uint64_t during = writer.writes();
  REQUIRE(eventually([&] { return writer.writes() > during + 20; }));  // still writing after
  writer.stop();

  INFO(end.error);
  CHECK(end.stage == MigrationStage::kDone);
  CHECK(end.error.empty());
  CHECK(end.shard == shard);
  CHECK(end.progress.bytes_total > 0);
  CHECK(end.progress.bytes_done == end.progress.bytes_total);
  CHECK(end.progress.percent == 100);
  // The source's log and state files, not directory entries (400 writes of
  // 200 bytes went through it).
  CHECK(end.bytes_freed > 40'000);
  CHECK(end.finished_at_ms >= end.started_at_ms);
  REQUIRE(end.stage_ms.size() == 5);
  CHECK(writer.errors().empty());

  // The ShardMap: node-4 replaces the source, with a newer epoch.
  Result<ClusterInfo> info = info_of(cluster.at(4));
  REQUIRE(info.is_ok());
  const ShardInfo& s = info->shards[shard.value()];
  CHECK(std::find(s.replicas.begin(), s.replicas.end(), node(4)) != s.replicas.end());
  CHECK(std::find(s.replicas.begin(), s.replicas.end(), node(source)) == s.replicas.end());
  CHECK(s.learners.empty());
  CHECK(s.epoch > Epoch(1));
  // The source dropped its copy; the target holds one.
  CHECK_FALSE(hosts_group(cluster.at(source), shard));
  CHECK(hosts_group(cluster.at(4), shard));
  // Its files go too, off the loop: first renamed aside, then deleted.
  const std::filesystem::path source_dir = cluster.dirs[static_cast<std::size_t>(source - 1)]->path();
  const auto leftovers = [&] {
    std::vector<std::string> names;
    for (const char* sub : {"raft", "shards"}) {
      for (const auto& e : std::filesystem::directory_iterator(source_dir / sub)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(".trash-", 0) == 0 || name == fmt::format("s-{}", shard.value()) ||
            name == fmt::format("g-{}", group_of_shard(shard).value())) {
          names.push_back(name);
        }
      }
    }
    return names;
  };
  CHECK(eventually([&] { return leftovers().empty(); }));
  INFO("left behind: " << fmt::format("{}", fmt::join(leftovers(), ", ")));
  CHECK(leftovers().empty());

  // Every acknowledged write is there, through every node, the source too.
  const std::map<std::string, std::string> acked = writer.acked();
  for (int via = 1; via <= 4; ++via) {
    for (const auto& [key, value] : acked) {
      const KvReply got = cluster.at(via).get(key).get();
      INFO("via node-" << via << " key " << key << ": " << got.status.to_string());
      REQUIRE(got.status.is_ok());
      if (writer.unknown() == 0) CHECK(got.value == value);
    }
  }
  // node-4's own copy holds the data (a stale read is served locally).
  GetOptions stale;
  stale.consistency = ReadConsistency::kStale;
  REQUIRE(eventually([&] {
    return cluster.at(4).get(keys[0], stale).get().status.is_ok();
  }));
  // The metrics count it.
  const std::string metrics = cluster.at(1).metrics_text();
  CHECK(metrics.find("nodenomad_migrations{stage=\"done\"} 1") != std::string::npos);
}

TEST_CASE("migration: a cancel during Transfer rolls back; the ShardMap is as before",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster);
  const ShardId shard(5);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 20);
  for (std::size_t i = 0; i < 200; ++i) {
    REQUIRE(cluster.put_until_ok(1, keys[i % keys.size()], std::string(300, 'b')).status.is_ok());
  }
  Result<ClusterInfo> before = info_of(cluster.at(1));
  REQUIRE(before.is_ok());
  // 2 KB/s: the transfer takes seconds, long enough to cancel it.
  Result<MigrationBatch> batch = migrate(cluster.at(2), shard, 1, 4, 2'000);
  REQUIRE(batch.is_ok());
  const std::string id = batch->operations.at(0);
  wait_for_stage(cluster, 1, id, MigrationStage::kTransfer);
  REQUIRE(eventually([&] { return hosts_group(cluster.at(4), shard); }));
  Result<MigrationStatus> cancelled = wait_for<MigrationStatus>([&](auto done) {
    cluster.at(3).control_migration(id, MigrationControl::kCancel, 0, std::move(done));
  });
  INFO(cancelled.status().to_string());
  REQUIRE(cancelled.is_ok());
  CHECK(cancelled->cancel_requested);
  const MigrationStatus end = wait_until_ended(cluster, 2, id);
  CHECK(end.stage == MigrationStage::kCancelled);
  CHECK(end.error == "cancelled by request");
  Result<ClusterInfo> after = info_of(cluster.at(1));
  REQUIRE(after.is_ok());
  const ShardInfo& s = after->shards[shard.value()];
  CHECK(s.replicas == before->shards[shard.value()].replicas);
  CHECK(s.learners.empty());
  CHECK(eventually([&] { return !hosts_group(cluster.at(4), shard); }));
  // A cancel of an ended operation is refused, naming why.
  Result<MigrationStatus> again = wait_for<MigrationStatus>([&](auto done) {
    cluster.at(3).control_migration(id, MigrationControl::kCancel, 0, std::move(done));
  });
  REQUIRE(again.status().is(StatusCode::kInvalidArgument));
  CHECK(std::string(again.status().message()).find("has ended") != std::string::npos);
  // The shard still serves.
  CHECK(cluster.put_until_ok(4, keys[0], "after").status.is_ok());
}

TEST_CASE("migration: a paused transfer does not time out; bandwidth changes while running",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster, [](NodeOptions& o) { o.migration_timeout_ms = 1'500; });
  const ShardId shard(1);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 20);
  for (std::size_t i = 0; i < 100; ++i) {
    REQUIRE(cluster.put_until_ok(1, keys[i % keys.size()], std::string(300, 'c')).status.is_ok());
  }
  Result<MigrationBatch> batch = migrate(cluster.at(1), shard, 2, 4, 1'000);
  REQUIRE(batch.is_ok());
  const std::string id = batch->operations.at(0);
  auto control = [&](MigrationControl c, std::uint64_t bw) {
    return wait_for<MigrationStatus>([&](auto done) {
      cluster.at(2).control_migration(id, c, bw, std::move(done));
    });
  };
  REQUIRE(control(MigrationControl::kPause, 0).is_ok());
  // Paused for more than the stage timeout: still running, not rolled back.
  const auto paused_at = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] {
    return std::chrono::steady_clock::now() - paused_at > std::chrono::milliseconds(2'500);
  }));
  Result<MigrationStatus> during = status_of(cluster.at(3), id);
  REQUIRE(during.is_ok());
  CHECK(during->paused);
  CHECK_FALSE(migration_stage_terminal(during->stage));
  // Held before Verify: a paused move does not go on to the next stages.
  CHECK(during->stage <= MigrationStage::kTransfer);
  // A bandwidth of 0 is refused; a real one is taken.
  CHECK(control(MigrationControl::kSetBandwidth, 0).status().is(StatusCode::kInvalidArgument));
  Result<MigrationStatus> faster = control(MigrationControl::kSetBandwidth, 50'000'000);
  REQUIRE(faster.is_ok());
  CHECK(faster->bandwidth_bytes_per_s == 50'000'000);
  REQUIRE(control(MigrationControl::kResume, 0).is_ok());
  const MigrationStatus end = wait_until_ended(cluster, 1, id);
  INFO(end.error);
  CHECK(end.stage == MigrationStage::kDone);
}

TEST_CASE("migration: a target that stops making progress is rolled back after the timeout",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster, [](NodeOptions& o) { o.migration_timeout_ms = 1'000; });
  const ShardId shard(6);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 10);
  for (std::size_t i = 0; i < 100; ++i) {
    REQUIRE(cluster.put_until_ok(1, keys[i % keys.size()], std::string(300, 'd')).status.is_ok());
  }
  // The target is cut off from everyone: its stream makes no progress.
  cluster.network.isolate(node(4));
  Result<MigrationBatch> batch = migrate(cluster.at(1), shard, 2, 4);
  REQUIRE(batch.is_ok());
  const MigrationStatus end = wait_until_ended(cluster, 1, batch->operations.at(0));
  CHECK(end.stage == MigrationStage::kFailed);
  CHECK(end.error.find("made no progress") != std::string::npos);
  Result<ClusterInfo> after = info_of(cluster.at(1));
  REQUIRE(after.is_ok());
  CHECK(after->shards[shard.value()].learners.empty());
  CHECK(after->shards[shard.value()].replicas.size() == 3);
  cluster.network.heal();
  CHECK(cluster.put_until_ok(3, keys[0], "after").status.is_ok());
}

TEST_CASE("migration: the coordinator's crash mid-move is resumed by the next metadata leader",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster);
  const ShardId shard(2);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 20);
  for (std::size_t i = 0; i < 200; ++i) {
    REQUIRE(cluster.put_until_ok(1, keys[i % keys.size()], std::string(300, 'e')).status.is_ok());
  }
  Result<ClusterInfo> info = info_of(cluster.at(1));
  REQUIRE(info.is_ok());
  int coordinator = 0;
  for (int i = 1; i <= 3; ++i) coordinator = info->metadata_leader == node(i) ? i : coordinator;
  REQUIRE(coordinator != 0);
  const int source = coordinator == 1 ? 2 : 1;
  const int survivor = 6 - coordinator - source;
  Result<MigrationBatch> batch = migrate(cluster.at(survivor), shard, source, 4, 20'000);
  REQUIRE(batch.is_ok());
  const std::string id = batch->operations.at(0);
  wait_for_stage(cluster, survivor, id, MigrationStage::kTransfer);
  cluster.stop(coordinator);  // the metadata leader goes away mid-Transfer
  const MigrationStatus end = wait_until_ended(cluster, survivor, id);
  INFO(end.error);
  CHECK(end.stage == MigrationStage::kDone);
  Result<ClusterInfo> after = info_of(cluster.at(survivor));
  REQUIRE(after.is_ok());
  const ShardInfo& s = after->shards[shard.value()];
  CHECK(std::find(s.replicas.begin(), s.replicas.end(), node(4)) != s.replicas.end());
  CHECK(std::find(s.replicas.begin(), s.replicas.end(), node(source)) == s.replicas.end());
  for (const std::string& key : keys) {
    const KvReply got = cluster.at(4).get(key).get();
    INFO(key << ": " << got.status.to_string());
    REQUIRE(got.status.is_ok());
  }
}

TEST_CASE("migration: bad requests are refused with the rule named", "[node][migration]") {
  TestCluster cluster(3);
  cluster.start_all();
  REQUIRE(cluster.put_until_ok(1, "k", "v").status.is_ok());
  Result<MigrationBatch> to_member = migrate(cluster.at(1), ShardId(0), 1, 2);
  REQUIRE(to_member.status().is(StatusCode::kInvalidArgument));
  CHECK(std::string(to_member.status().message()).find("already holds a replica") !=
        std::string::npos);
  Result<MigrationBatch> unknown = migrate(cluster.at(2), ShardId(0), 1, 9);
  REQUIRE(unknown.status().is(StatusCode::kInvalidArgument));
  CHECK(std::string(unknown.status().message()).find("not a member") != std::string::npos);
  Result<MigrationBatch> no_shard = migrate(cluster.at(3), ShardId(99), 1, 2);
  REQUIRE(no_shard.status().is(StatusCode::kInvalidArgument));
  Result<MigrationStatus> missing = status_of(cluster.at(1), "m1-s0");
  CHECK(missing.status().is(StatusCode::kNotFound));
  Result<MigrationBatch> balanced = wait_for<MigrationBatch>(
      [&](auto done) { cluster.at(2).rebalance(std::move(done)); });
  REQUIRE(balanced.is_ok());
  CHECK(balanced->operations.empty());  // a fresh cluster matches its ring
}

TEST_CASE("migration: a join rebalances shards onto the new node", "[node][migration]") {
  TestCluster cluster(4);
  cluster.members.pop_back();
  auto common = [](NodeOptions& o) {
    o.compact_every_entries = 50;
    o.max_concurrent_migrations = 4;
    o.maintenance_interval_ms = 300;
  };
  for (int i = 1; i <= 3; ++i) cluster.start(i, common);
  REQUIRE(cluster.put_until_ok(1, "k", "v").status.is_ok());
  cluster.start(4, [&](NodeOptions& o) {
    o.join = true;
    o.initial_members = cluster.members;
    common(o);
  });
  std::promise<Status> added;
  cluster.at(2).add_node(node(4), "mem:4", [&](Status s) { added.set_value(s); });
  REQUIRE(added.get_future().get().is_ok());
  // Every operation the join started ends done, and node-4 then hosts what
  // the ring gives it.
  std::vector<MigrationStatus> all;
  REQUIRE(eventually(
      [&] {
        Result<std::vector<MigrationStatus>> list = wait_for<std::vector<MigrationStatus>>(
            [&](auto done) { cluster.at(1).list_migrations(std::move(done)); });
        if (!list.is_ok() || list->empty()) return false;
        all = *list;
        return std::all_of(all.begin(), all.end(), [](const MigrationStatus& s) {
          return migration_stage_terminal(s.stage);
        });
      },
      std::chrono::seconds(90)));
  for (const MigrationStatus& s : all) {
    INFO(s.id << ": " << migration_stage_name(s.stage) << " " << s.error);
    CHECK(s.stage == MigrationStage::kDone);
    CHECK(s.target == node(4));
  }
  Result<ClusterInfo> info = info_of(cluster.at(4));
  REQUIRE(info.is_ok());
  std::uint32_t on_four = 0;
  for (const ShardInfo& s : info->shards) {
    on_four += std::find(s.replicas.begin(), s.replicas.end(), node(4)) != s.replicas.end();
    CHECK(s.replicas.size() == 3);
  }
  CHECK(on_four == all.size());
  CHECK(on_four > 0);
  CHECK(cluster.at(4).get("k").get().value == "v");
  // Leaders spread: node-4 leads some shards, and no node leads two more
  // than another.
  std::map<NodeId, int> led;
  REQUIRE(eventually([&] {
    Result<ClusterInfo> now = info_of(cluster.at(1));
    if (!now.is_ok()) return false;
    led.clear();
    for (const ClusterNodeInfo& n : now->nodes) led[n.id] = static_cast<int>(n.shards_led);
    int lo = 1 << 30, hi = 0;
    for (const auto& [id, count] : led) {
      lo = std::min(lo, count);
      hi = std::max(hi, count);
    }
    return led[node(4)] > 0 && hi - lo <= 1;
  }));
}

TEST_CASE("migration: a drained node hands every replica over, then leaves the cluster",
          "[node][migration]") {
  TestCluster cluster(4);
  for (int i = 1; i <= 4; ++i) {
    cluster.start(i, [](NodeOptions& o) {
      o.compact_every_entries = 50;
      o.max_concurrent_migrations = 4;
    });
  }
  std::vector<std::string> keys;
  for (int i = 0; i < 60; ++i) keys.push_back("drain-" + std::to_string(i));
  for (const std::string& key : keys) REQUIRE(cluster.put_until_ok(1, key, key).status.is_ok());
  Result<MigrationBatch> batch = wait_for<MigrationBatch>(
      [&](auto done) { cluster.at(3).drain_node(node(2), std::move(done)); });
  INFO(batch.status().to_string());
  REQUIRE(batch.is_ok());
  const std::size_t hosted = cluster.at(1).metadata()->shard_map().shards_on(node(2)).size();
  CHECK(batch->operations.size() == hosted);
  // node-2 leaves the member list once it holds nothing.
  REQUIRE(eventually([&] { return cluster.at(1).metadata()->find_member(node(2)) == nullptr; },
                     std::chrono::seconds(90)));
  const std::shared_ptr<const ClusterMetadata> view = cluster.at(3).metadata();
  for (std::uint32_t s = 0; s < view->shard_count(); ++s) {
    const ShardPlacement& p = view->shard_map().placement(ShardId(s));
    CHECK(p.replicas.size() == 3);
    CHECK_FALSE(p.hosts(node(2)));
  }
  for (const std::string& key : keys) {
    const KvReply got = cluster.at(4).get(key).get();
    INFO(key << ": " << got.status.to_string());
    REQUIRE(got.status.is_ok());
    CHECK(got.value == key);
  }
  // Draining an unknown node names it.
  Result<MigrationBatch> unknown = wait_for<MigrationBatch>(
      [&](auto done) { cluster.at(1).drain_node(node(9), std::move(done)); });
  CHECK(unknown.status().is(StatusCode::kNotFound));
}

TEST_CASE("migration: an orphan copy left by a source that was down is dropped by the sweep",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster, [](NodeOptions& o) {
    o.migration_timeout_ms = 2'000;
    o.maintenance_interval_ms = 500;
  });
  const ShardId shard(4);
  const int source = non_coordinator(cluster);
  REQUIRE(cluster.put_until_ok(1, keys_of_shard(shard, cluster.shard_count, 1)[0], "x")
              .status.is_ok());
  Result<MigrationBatch> batch = migrate(cluster.at(1), shard, source, 4);
  REQUIRE(batch.is_ok());
  const std::string id = batch->operations.at(0);
  wait_for_stage(cluster, 4, id, MigrationStage::kCleanup);
  cluster.stop(source);  // down at Cleanup: it cannot drop its copy now
  const MigrationStatus end = wait_until_ended(cluster, 4, id);
  CHECK(end.stage == MigrationStage::kDone);
  // A crash between renaming a dropped copy aside and deleting it leaves
  // it under a trash name: a restart deletes it.
  const std::filesystem::path trash =
      std::filesystem::path(cluster.dirs[static_cast<std::size_t>(source - 1)]->path()) /
      "shards" / ".trash-s-7-1";
  std::filesystem::create_directories(trash / "snapshots");
  std::ofstream(trash / "snapshots" / "left-behind") << "a crash left this";
  cluster.start(source, [](NodeOptions& o) {
    o.compact_every_entries = 50;
    o.rebalance_on_join = false;
    o.migration_chunk_bytes = 4096;
    o.migration_timeout_ms = 2'000;
    o.maintenance_interval_ms = 500;
  });
  CHECK_FALSE(std::filesystem::exists(trash));
  // The restarted source still has the copy on disk until the sweep.
  REQUIRE(eventually([&] { return !hosts_group(cluster.at(source), shard); },
                     std::chrono::seconds(30)));
}

// A peer that sends forwarded requests by hand, as a node with a stale
// route would, and collects the answers.
TEST_CASE("migration: a node without the shard relays a request along its newer view",
          "[node][migration]") {
  TestCluster cluster(4);
  cluster.start_all();
  REQUIRE(cluster.put_until_ok(1, "warm-up", "x").status.is_ok());
  // A shard node-4 does not hold (4 nodes, 3 replicas per shard).
  const std::shared_ptr<const ClusterMetadata> view = cluster.at(4).metadata();
  std::optional<ShardId> elsewhere;
  for (std::uint32_t s = 0; s < view->shard_count() && !elsewhere; ++s) {
    if (!view->shard_map().placement(ShardId(s)).hosts(node(4))) elsewhere = ShardId(s);
  }
  REQUIRE(elsewhere);
  const std::string key = keys_of_shard(*elsewhere, cluster.shard_count, 1)[0];
  HandPeer peer(cluster.network, NodeId("stale-router"));
  node::RpcRequest put;
  put.op = node::RpcOp::kPut;
  put.key = key;
  put.value = "relayed";
  put.timeout_ms = 3'000;
  put.shard_epoch = view->shard_map().placement(*elsewhere).epoch.value();
  Result<node::RpcResponse> relayed = peer.call(node(4), put);
  REQUIRE(relayed.is_ok());
  INFO(relayed->reply.status.to_string());
  CHECK(relayed->reply.status.is_ok());
  CHECK(cluster.at(1).get(key).get().value == "relayed");
  // A sender with a newer view than node-4's is told so, not relayed.
  put.shard_epoch += 5;
  Result<node::RpcResponse> newer = peer.call(node(4), put);
  REQUIRE(newer.is_ok());
  CHECK(newer->reply.status.is(StatusCode::kUnavailable));
  CHECK(std::string(newer->reply.status.message()).find("view is at epoch") != std::string::npos);
  // A request relayed twice already is not relayed again.
  put.shard_epoch = 0;
  put.hops = 2;
  Result<node::RpcResponse> bounced = peer.call(node(4), put);
  REQUIRE(bounced.is_ok());
  CHECK(bounced->reply.status.is(StatusCode::kUnavailable));
  const std::string metrics = cluster.at(4).metrics_text();
  CHECK(metrics.find("nodenomad_node_requests_total{path=\"relayed\"} 1") != std::string::npos);
}

TEST_CASE("migration: a transfer cut off mid-way goes on from the last acknowledged chunk",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster);
  const ShardId shard(7);
  const std::vector<std::string> keys = keys_of_shard(shard, cluster.shard_count, 300);
  for (const std::string& key : keys) {
    REQUIRE(cluster.put_until_ok(1, key, std::string(300, 'f')).status.is_ok());
  }
  Result<ClusterInfo> info = info_of(cluster.at(1));
  REQUIRE(info.is_ok());
  const NodeId leader = info->shards[shard.value()].leader;
  REQUIRE_FALSE(leader.empty());
  const int leader_index = std::stoi(leader.str().substr(5));
  const int source = leader_index == 1 ? 2 : 1;  // any voter; the leader streams
  const std::uint64_t sent_before =
      metric(cluster.at(leader_index), "nodenomad_migration_snapshot_bytes_sent_total");
  // About 100 KB at 25 KB/s: a few seconds of streaming.
  Result<MigrationBatch> batch = migrate(cluster.at(3), shard, source, 4, 25'000);
  REQUIRE(batch.is_ok());
  const std::string id = batch->operations.at(0);
  REQUIRE(eventually([&] {
    Result<MigrationStatus> s = status_of(cluster.at(1), id);
    return s.is_ok() && s->stage == MigrationStage::kTransfer && s->progress.bytes_done > 60'000;
  }));
  cluster.network.partition(leader, node(4));
  const auto cut_at = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] {  // a second of silence: several resends are lost
    return std::chrono::steady_clock::now() - cut_at > std::chrono::seconds(1);
  }));
  cluster.network.heal();
  const MigrationStatus end = wait_until_ended(cluster, 1, id);
  INFO(end.error);
  REQUIRE(end.stage == MigrationStage::kDone);
  if (info_of(cluster.at(1))->shards[shard.value()].leader == leader) {
    // Cut after 60% of the stream: had the transfer started over, at least
    // 1.6 snapshots would have left the leader.
    const std::uint64_t sent =
        metric(cluster.at(leader_index), "nodenomad_migration_snapshot_bytes_sent_total") -
        sent_before;
    INFO("sent " << sent << " bytes for a snapshot of about " << end.progress.bytes_total);
    CHECK(sent >= end.progress.bytes_total / 2);
    CHECK(sent < end.progress.bytes_total * 3 / 2);
  }
  for (const std::string& key : {keys.front(), keys.back()}) {
    CHECK(cluster.at(4).get(key).get().status.is_ok());
  }
}

TEST_CASE("migration: MigrationEngine plans, executes, reports and refuses a stale plan",
          "[node][migration]") {
  TestCluster cluster(4);
  start_with_joiner(cluster);
  MigrationEngine engine(cluster.at(2));
  // A refused request names the rule.
  Result<MigrationPlan> refused = engine.create_migration_plan({ShardId(1)}, node(1), node(2));
  REQUIRE(refused.status().is(StatusCode::kInvalidArgument));
  CHECK(std::string(refused.status().message()).find("already holds a replica") !=
        std::string::npos);
  Result<MigrationPlan> plan =
      engine.create_migration_plan({ShardId(0), ShardId(1)}, node(1), node(4));
  REQUIRE(plan.is_ok());
  REQUIRE(plan->size() == 2);
  // The same plan, made stale by a move of shard 1 meanwhile.
  Result<MigrationPlan> first = engine.create_migration_plan({ShardId(1)}, node(1), node(4));
  REQUIRE(first.is_ok());
  Result<std::vector<std::string>> moved = engine.execute_migration_plan(*first).get();
  REQUIRE(moved.is_ok());
  REQUIRE(moved->size() == 1);
  MigrationStatus end = wait_until_ended(cluster, 3, moved->front());
  CHECK(end.stage == MigrationStage::kDone);
  Result<std::vector<std::string>> stale = engine.execute_migration_plan(*plan).get();
  INFO(stale.status().to_string());
  CHECK_FALSE(stale.is_ok());
  // Status and listing through the engine.
  Result<MigrationStatus> status = engine.get_operation_status(moved->front()).get();
  REQUIRE(status.is_ok());
  CHECK(status->stage == MigrationStage::kDone);
  CHECK(status->shard == ShardId(1));
  Result<std::vector<MigrationStatus>> all = engine.list_operations().get();
  REQUIRE(all.is_ok());
  CHECK(all->size() == 1);
  CHECK(engine.cancel(moved->front()).get().status().is(StatusCode::kInvalidArgument));
  // A fresh plan for shard 0 alone still goes through.
  Result<MigrationPlan> again = engine.create_migration_plan({ShardId(0)}, node(1), node(4));
  REQUIRE(again.is_ok());
  Result<std::vector<std::string>> second = engine.execute_migration_plan(*again, 1'000'000).get();
  REQUIRE(second.is_ok());
  end = wait_until_ended(cluster, 1, second->front());
  CHECK(end.stage == MigrationStage::kDone);
  CHECK(end.bandwidth_bytes_per_s == 1'000'000);
}

TEST_CASE("migration: calls pending when a node stops are answered, not dropped",
          "[node][migration]") {
  TestCluster cluster(3);
  cluster.start_all();
  REQUIRE(cluster.put_until_ok(1, "k", "v").status.is_ok());
  MigrationEngine engine(cluster.at(3));
  cluster.network.isolate(node(3));  // no metadata leader reachable from node-3
  auto pending = engine.list_operations();
  cluster.stop(3);
  // Answered (by the node, or for it when it stopped), never left hanging.
  REQUIRE(pending.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  const Result<std::vector<MigrationStatus>> answer = pending.get();
  if (!answer.is_ok()) CHECK(answer.status().is(StatusCode::kUnavailable));
}

}  // namespace
}  // namespace nodenomad
