// A three-node cluster in one process (InMemoryTransport): routing from any
// node, forwarding, compare-and-set, TTL, restarts, a lost node, joining.
#include <catch2/catch.hpp>
#include <future>

#include "node/node_rpc.hpp"
#include "node_test_util.hpp"

namespace nodenomad {
namespace {

using node_test::eventually;
using node_test::TestCluster;

TEST_CASE("node: a write through one node is read through every node", "[node]") {
  TestCluster cluster(3);
  cluster.start_all();
  for (int i = 0; i < 20; ++i) {
    const KvReply put = cluster.put_until_ok(1 + i % 3, "key-" + std::to_string(i), "v" + std::to_string(i));
    REQUIRE(put.status.is_ok());
    CHECK(put.version == 1);
  }
  for (int via = 1; via <= 3; ++via) {
    for (int i = 0; i < 20; ++i) {
      const KvReply got = cluster.at(via).get("key-" + std::to_string(i)).get();
      INFO(got.status.to_string());
      REQUIRE(got.status.is_ok());
      CHECK(got.value == "v" + std::to_string(i));
      CHECK(got.version == 1);
    }
  }
  const KvReply missing = cluster.at(2).get("nope").get();
  CHECK(missing.status.is(StatusCode::kNotFound));
  CHECK(cluster.at(1).is_ready());
}

TEST_CASE("node: compare-and-set, delete and versions", "[node]") {
  TestCluster cluster(3);
  cluster.start_all();
  REQUIRE(cluster.put_until_ok(1, "k", "a").version == 1);
  PutOptions cas;
  cas.if_version = 1;
  const KvReply second = cluster.at(2).put("k", "b", cas).get();
  REQUIRE(second.status.is_ok());
  CHECK(second.version == 2);
  const KvReply lost = cluster.at(3).put("k", "c", cas).get();
  CHECK(lost.status.is(StatusCode::kVersionMismatch));
  CHECK(lost.current_version == 2);
  PutOptions absent;
  absent.if_version = 0;
  CHECK(cluster.at(3).put("k", "d", absent).get().status.is(StatusCode::kVersionMismatch));
  RemoveOptions wrong;
  wrong.if_version = 7;
  CHECK(cluster.at(1).remove("k", wrong).get().status.is(StatusCode::kVersionMismatch));
  const KvReply removed = cluster.at(1).remove("k").get();
  REQUIRE(removed.status.is_ok());
  CHECK(removed.deleted);
  CHECK_FALSE(cluster.at(2).remove("k").get().deleted);
  CHECK(cluster.at(3).get("k").get().status.is(StatusCode::kNotFound));
  const KvReply again = cluster.at(2).put("k", "e").get();
  REQUIRE(again.status.is_ok());
  CHECK(again.version > 2);  // a re-created key starts above the old one
}

TEST_CASE("node: bad options are refused by open() with the option named", "[node]") {
  InMemoryNetwork network;
  auto transport = network.connect(node_test::node(1));
  node_test::TempDir dir;
  NodeOptions options;
  options.initial_members = {{node_test::node(1), "mem:1"}};
  options.data_dir = dir.path();
  options.transport = transport.get();
  // Each refusal happens before anything starts, and nothing is left running.
  Result<std::unique_ptr<Node>> no_id = Node::open(options);
  REQUIRE_FALSE(no_id.is_ok());
  CHECK(no_id.status().message().find("id") != std::string_view::npos);
  options.id = node_test::node(2);  // not a founding member
  Result<std::unique_ptr<Node>> stranger = Node::open(options);
  REQUIRE_FALSE(stranger.is_ok());
  CHECK(stranger.status().message().find("node-2") != std::string_view::npos);
  options.id = node_test::node(1);
  options.transport = nullptr;
  CHECK(Node::open(options).status().message().find("transport") != std::string_view::npos);
  options.transport = transport.get();
  options.tick_ms = 0;
  CHECK(Node::open(options).status().message().find("tick_ms") != std::string_view::npos);
  options.tick_ms = 10;
  options.compact_log_fraction = -1;
  CHECK(Node::open(options).status().message().find("compact_log_fraction") !=
        std::string_view::npos);
}

TEST_CASE("node: bad input is refused with the limit named", "[node]") {
  TestCluster cluster(1);
  cluster.start_all();
  const KvReply empty = cluster.at(1).put("", "v").get();
  CHECK(empty.status.is(StatusCode::kInvalidArgument));
  const KvReply long_key = cluster.at(1).put(std::string(1025, 'k'), "v").get();
  CHECK(long_key.status.is(StatusCode::kInvalidArgument));
  CHECK(long_key.status.message().find("1024") != std::string_view::npos);
  const KvReply big = cluster.at(1).put("k", std::string((1u << 20) + 1, 'v')).get();
  CHECK(big.status.is(StatusCode::kInvalidArgument));
  PutOptions zero_ttl;
  zero_ttl.ttl_ms = 0;
  CHECK(cluster.at(1).put("k", "v", zero_ttl).get().status.is(StatusCode::kInvalidArgument));
}

TEST_CASE("node: consistency levels and binary keys", "[node]") {
  TestCluster cluster(3);
  cluster.start_all();
  const std::string key("a\0b/\xff", 5);
  const std::string value("\0\1\2", 3);
  REQUIRE(cluster.put_until_ok(2, key, value).status.is_ok());
  for (ReadConsistency c : {ReadConsistency::kLinearizable, ReadConsistency::kLease}) {
    const KvReply got = cluster.at(3).get(key, GetOptions{c}).get();
    REQUIRE(got.status.is_ok());
    CHECK(got.value == value);
  }
  // A stale read is served by any replica once it has applied the write.
  CHECK(eventually([&] {
    const KvReply got = cluster.at(1).get(key, GetOptions{ReadConsistency::kStale}).get();
    return got.status.is_ok() && got.value == value;
  }));
}

TEST_CASE("node: a key with a TTL is hidden, then expired by the shard leader", "[node][ttl]") {
  ManualClock clock;  // declared first: the nodes read it until the cluster is destroyed
  TestCluster cluster(3);
  for (int i = 1; i <= 3; ++i) cluster.start(i, [&](NodeOptions& o) { o.clock = &clock; });
  PutOptions ttl;
  ttl.ttl_ms = 60'000;
  KvReply put;
  REQUIRE(eventually([&] {
    put = cluster.at(1).put("session", "x", ttl).get();
    return put.status.is_ok();
  }));
  const KvReply fresh = cluster.at(2).get("session").get();
  REQUIRE(fresh.status.is_ok());
  REQUIRE(fresh.expires_in_ms.has_value());
  CHECK(*fresh.expires_in_ms <= 60'000);
  clock.set_wall(clock.wall_now() + std::chrono::minutes(2));
  CHECK(cluster.at(3).get("session").get().status.is(StatusCode::kNotFound));
  // The leader's expiry pass removes it from every replica's state.
  CHECK(eventually([&] {
    const std::string metrics = cluster.at(1).metrics_text() + cluster.at(2).metrics_text() +
                                cluster.at(3).metrics_text();
    return metrics.find("nodenomad_ttl_keys_expired_total 1") != std::string::npos;
  }));
}

TEST_CASE("node: the cluster keeps serving without one node, and it catches up", "[node]") {
  TestCluster cluster(3);
  cluster.start_all();
  REQUIRE(cluster.put_until_ok(1, "before", "1").status.is_ok());
  cluster.stop(3);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(cluster.put_until_ok(1 + i % 2, "during-" + std::to_string(i), "x").status.is_ok());
  }
  cluster.start(3);
  REQUIRE(cluster.put_until_ok(3, "after", "3").status.is_ok());
  for (int i = 0; i < 10; ++i) {
    CHECK(eventually([&] {
      const KvReply got =
          cluster.at(3).get("during-" + std::to_string(i), GetOptions{ReadConsistency::kStale}).get();
      return got.status.is_ok();
    }));
  }
}

TEST_CASE("node: a full restart keeps every acknowledged write", "[node][restart]") {
  TestCluster cluster(3);
  cluster.start_all();
  for (int i = 0; i < 30; ++i) {
    REQUIRE(cluster.put_until_ok(1 + i % 3, "k" + std::to_string(i), std::to_string(i)).status.is_ok());
  }
  for (int i = 1; i <= 3; ++i) cluster.stop(i);
  cluster.start_all();
  for (int i = 0; i < 30; ++i) {
    KvReply got;
    REQUIRE(eventually([&] {
      got = cluster.at(1 + i % 3).get("k" + std::to_string(i)).get();
      return got.status.is_ok();
    }));
    CHECK(got.value == std::to_string(i));
  }
}

TEST_CASE("node: without a quorum a write is not applied or its outcome is unknown",
          "[node]") {
  TestCluster cluster(3);
  cluster.start_all();
  REQUIRE(cluster.put_until_ok(1, "k", "v").status.is_ok());
  cluster.stop(2);
  cluster.stop(3);
  const KvReply reply = cluster.at(1).put("k2", "v").get();
  INFO(reply.status.to_string());
  CHECK((reply.status.is(StatusCode::kUnavailable) || reply.status.is(StatusCode::kTimeout)));
}

TEST_CASE("node: a new node joins through add_node and serves requests", "[node][join]") {
  TestCluster cluster(4);
  cluster.members.pop_back();  // node-4 is not a founder
  for (int i = 1; i <= 3; ++i) cluster.start(i);
  REQUIRE(cluster.put_until_ok(1, "k", "v").status.is_ok());
  cluster.start(4, [&](NodeOptions& o) {
    o.join = true;
    o.initial_members = cluster.members;
  });
  CHECK_FALSE(cluster.at(4).is_ready());
  CHECK(cluster.at(4).get("k").get().status.is(StatusCode::kUnavailable));
  std::promise<Status> added;
  cluster.at(2).add_node(node_test::node(4), "mem:4", [&](Status s) { added.set_value(s); });
  const Status status = added.get_future().get();
  INFO(status.to_string());
  REQUIRE(status.is_ok());
  REQUIRE(eventually([&] { return cluster.at(4).is_ready(); }));
  const KvReply got = cluster.at(4).get("k").get();
  REQUIRE(got.status.is_ok());
  CHECK(got.value == "v");
  std::promise<Result<ClusterInfo>> info;
  cluster.at(4).cluster_info([&](Result<ClusterInfo> r) { info.set_value(std::move(r)); });
  Result<ClusterInfo> got_info = info.get_future().get();
  REQUIRE(got_info.is_ok());
  CHECK(got_info->nodes.size() == 4);
  CHECK(got_info->shards.size() == 8);
}

TEST_CASE("node: cluster info names leaders and counts keys", "[node]") {
  TestCluster cluster(3);
  cluster.start_all();
  for (int i = 0; i < 10; ++i) REQUIRE(cluster.put_until_ok(1, "k" + std::to_string(i), "v").status.is_ok());
  Result<ClusterInfo> info = Status::unavailable("not yet");
  REQUIRE(eventually([&] {
    std::promise<Result<ClusterInfo>> p;
    cluster.at(2).cluster_info([&](Result<ClusterInfo> r) { p.set_value(std::move(r)); });
    info = p.get_future().get();
    if (!info.is_ok()) return false;
    std::uint64_t keys = 0;
    for (const ShardInfo& s : info->shards) {
      if (s.leader.empty()) return false;
      keys += s.keys;
    }
    return keys == 10;
  }));
  CHECK(info->cluster_id == "nodenomad");
  CHECK(info->nodes.size() == 3);
  std::uint32_t led = 0;
  for (const ClusterNodeInfo& n : info->nodes) {
    CHECK(n.status == "up");
    CHECK(n.shards_hosted == 8);
    led += n.shards_led;
  }
  CHECK(led == 8);
}

}  // namespace
}  // namespace nodenomad
