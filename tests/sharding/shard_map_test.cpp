// ShardMap: the bootstrap placement (validation, determinism, golden values,
// balance), lookups, the epoch compare-and-set and leader hints.
#include <catch2/catch.hpp>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <string>

#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/sharding/key_to_shard.hpp"
#include "nodenomad/sharding/shard_map.hpp"
#include "sharding/sharding_test_support.hpp"

namespace nodenomad {
namespace {

using sharding_test::node_name;
using sharding_test::node_names;
using sharding_test::ring_of;
using sharding_test::test_seed;

bool mentions(const Status& status, std::string_view text) {
  return status.message().find(text) != std::string_view::npos;
}

ShardMap initial_or_die(const std::vector<NodeId>& nodes, std::uint32_t shards, std::uint32_t r) {
  Result<ShardMap> map = ShardMap::initial(nodes, shards, r);
  REQUIRE(map.is_ok());
  return std::move(map).value();
}

std::vector<NodeId> ids(std::initializer_list<int> numbers) {
  std::vector<NodeId> out;
  for (const int n : numbers) out.push_back(node_name(n));
  return out;
}

// Every placement as text, hashed: pins the whole map in one number.
std::uint64_t placement_digest(const ShardMap& map) {
  std::string text;
  for (const ShardPlacement& placement : map.placements()) {
    text += std::to_string(placement.epoch.value()) + ":";
    for (const NodeId& id : placement.replicas) text += id.str() + ",";
    text += ";";
  }
  return XXH3_64bits(text.data(), text.size());
}

TEST_CASE("shard map: initial refuses bad inputs and names the limit", "[shard_map]") {
  const auto refuse = [](const std::vector<NodeId>& nodes, std::uint32_t shards, std::uint32_t r,
                         std::string_view text) {
    Result<ShardMap> map = ShardMap::initial(nodes, shards, r);
    REQUIRE_FALSE(map.is_ok());
    CHECK(map.status().code() == StatusCode::kInvalidArgument);
    INFO(map.status().to_string());
    CHECK(mentions(map.status(), text));
  };
  refuse({}, 64, 3, "empty");
  refuse(node_names(1, 3), 0, 3, "kMaxShardCount");
  refuse(node_names(1, 3), kMaxShardCount + 1, 3, "65536");
  refuse(node_names(1, 3), 64, 0, "kMaxReplicationFactor");
  refuse(node_names(1, 3), 64, kMaxReplicationFactor + 1, "replication_factor 10");
  refuse(ids({1, 2, 1}), 64, 3, "node-1 is listed twice");
  refuse({NodeId("node-1"), NodeId()}, 64, 3, "empty");

  CHECK(ShardMap::initial(node_names(1, 1), 1, 1).is_ok());
  CHECK(ShardMap::initial(node_names(1, 3), kMaxShardCount, kMaxReplicationFactor).is_ok());
}

TEST_CASE("shard map: initial is the ring's replicas of shard-<s>, epoch 1", "[shard_map]") {
  const std::vector<NodeId> nodes = node_names(1, 7);
  const ShardMap map = initial_or_die(nodes, 64, 3);
  const ConsistentHashRing ring = ring_of(nodes);
  REQUIRE(map.shard_count() == 64);
  CHECK(map.replication_factor() == 3);
  for (std::uint32_t s = 0; s < 64; ++s) {
    const ShardPlacement& placement = map.placement(ShardId(s));
    CHECK(placement.epoch == kInitialShardEpoch);
    CHECK(placement.replicas == ring.get_replica_nodes("shard-" + std::to_string(s), 3));
    CHECK(placement.learners.empty());
    CHECK(placement.leader_hint.empty());
  }
}

TEST_CASE("shard map: initial does not depend on the order of the nodes", "[shard_map]") {
  Rng rng(test_seed("shard map: initial does not depend on the order of the nodes"));
  std::vector<NodeId> nodes = node_names(1, 9);
  const ShardMap reference = initial_or_die(nodes, 256, 3);
  for (int round = 0; round < 20; ++round) {
    // Fisher-Yates with the seeded Rng (std::shuffle's output is not portable).
    for (std::size_t i = nodes.size() - 1; i > 0; --i) {
      std::swap(nodes[i], nodes[rng.uniform(i + 1)]);
    }
    CHECK(initial_or_die(nodes, 256, 3) == reference);
  }
}

TEST_CASE("shard map: golden bootstrap placement", "[shard_map][golden]") {
  // Every node of a new cluster computes this on its own; a change here
  // means nodes of two versions would disagree about where shards live.
  const ShardMap map = initial_or_die(node_names(1, 5), 8, 3);
  const std::vector<std::vector<NodeId>> expected = {
      ids({1, 2, 5}), ids({3, 1, 5}), ids({3, 5, 1}), ids({2, 1, 3}),
      ids({3, 5, 1}), ids({5, 2, 3}), ids({2, 3, 1}), ids({2, 4, 3}),
  };
  for (std::uint32_t s = 0; s < 8; ++s) {
    INFO("shard " << s);
    CHECK(map.placement(ShardId(s)).replicas == expected[s]);
  }
  CHECK(placement_digest(initial_or_die(node_names(1, 5), 64, 3)) == 0xb5679655b4474343ULL);
  CHECK(placement_digest(initial_or_die(node_names(1, 3), 64, 3)) == 0x18b69b994921d797ULL);
}

TEST_CASE("shard map: bootstrap balance", "[shard_map]") {
  SECTION("3 nodes, R=3: every node hosts every shard") {
    const ShardMap map = initial_or_die(node_names(1, 3), 64, 3);
    for (const NodeId& node : node_names(1, 3)) CHECK(map.shards_on(node).size() == 64);
  }
  SECTION("5 nodes, R=3: each hosts about 64 * 3 / 5 = 38.4") {
    // Today 40, 39, 48, 30, 35: 256 virtual nodes per node and only 64
    // shards leave a spread of about +-25%; the bound catches a broken ring,
    // not ordinary variance.
    const ShardMap map = initial_or_die(node_names(1, 5), 64, 3);
    std::size_t total = 0;
    std::map<NodeId, int> first_choices;
    for (const NodeId& node : node_names(1, 5)) {
      const std::size_t hosted = map.shards_on(node).size();
      INFO(node << " hosts " << hosted << ": " << map.describe());
      CHECK(hosted >= 27);
      CHECK(hosted <= 50);
      total += hosted;
    }
    CHECK(total == 64 * 3);
    for (const ShardPlacement& placement : map.placements()) ++first_choices[placement.replicas[0]];
    for (const auto& [node, count] : first_choices) {
      INFO(node << " is the first choice of " << count << " shards");
      CHECK(count >= 6);
      CHECK(count <= 20);
    }
  }
  SECTION("fewer nodes than R: every shard on all of them") {
    const ShardMap map = initial_or_die(node_names(1, 2), 16, 3);
    for (const ShardPlacement& placement : map.placements()) CHECK(placement.replicas.size() == 2);
    CHECK(map.replication_factor() == 3);
  }
}

TEST_CASE("shard map: lookups", "[shard_map]") {
  const ShardMap map = initial_or_die(node_names(1, 5), 64, 3);
  for (const std::string& key :
       std::vector<std::string>{"", "a", "user:42", std::string("\0bin\xff", 5)}) {
    CHECK(map.shard_for_key(key) == shard_for_key(key, 64));
  }
  CHECK(map.has_shard(ShardId(63)));
  CHECK_FALSE(map.has_shard(ShardId(64)));
  const std::vector<ShardId> on_1 = map.shards_on(node_name(1));
  CHECK(std::is_sorted(on_1.begin(), on_1.end()));
  for (std::uint32_t s = 0; s < 64; ++s) {
    const bool listed = std::find(on_1.begin(), on_1.end(), ShardId(s)) != on_1.end();
    CHECK(listed == map.placement(ShardId(s)).hosts(node_name(1)));
  }
  CHECK(map.shards_on(node_name(9)).empty());
  CHECK(ShardMap().shard_count() == 0);
}

TEST_CASE("shard map: replace_placement is a compare-and-set on the epoch", "[shard_map]") {
  ShardMap map = initial_or_die(node_names(1, 3), 4, 3);
  REQUIRE(map.set_leader_hint(ShardId(2), node_name(1)).is_ok());
  const ShardMap before = map;

  const Status stale = map.replace_placement(ShardId(2), Epoch(7), ids({1, 2}), {});
  CHECK(stale.code() == StatusCode::kVersionMismatch);
  CHECK(stale.message() == "shard 2 is at epoch 1, but the update expected epoch 7");
  CHECK(map == before);

  const auto refuse = [&](std::vector<NodeId> replicas, std::vector<NodeId> learners,
                          std::string_view text) {
    const Status status = map.replace_placement(ShardId(2), Epoch(1), replicas, learners);
    CHECK(status.code() == StatusCode::kInvalidArgument);
    INFO(status.to_string());
    CHECK(mentions(status, text));
    CHECK(map == before);
  };
  refuse({}, ids({1}), "at least one replica");
  refuse(ids({1, 2, 1}), {}, "node-1 appears twice");
  refuse(ids({1, 2}), ids({2}), "node-2 appears twice");
  refuse(ids({1, 2}), {NodeId()}, "empty");
  refuse(node_names(1, 9), node_names(10, 17), "kMaxShardMembers");
  CHECK(map.replace_placement(ShardId(4), Epoch(1), ids({1}), {}).code() ==
        StatusCode::kInvalidArgument);

  REQUIRE(map.replace_placement(ShardId(2), Epoch(1), ids({3, 1}), ids({4})).is_ok());
  const ShardPlacement& moved = map.placement(ShardId(2));
  CHECK(moved.epoch == Epoch(2));
  CHECK(moved.replicas == ids({3, 1}));
  CHECK(moved.learners == ids({4}));
  CHECK(moved.leader_hint.empty());  // it named a member of the old group
  CHECK(map.placement(ShardId(1)) == before.placement(ShardId(1)));
  CHECK(map.replace_placement(ShardId(2), Epoch(1), ids({1}), {}).code() ==
        StatusCode::kVersionMismatch);
}

TEST_CASE("shard map: leader hints name a voter or nobody", "[shard_map]") {
  ShardMap map = initial_or_die(node_names(1, 2), 2, 2);
  REQUIRE(map.replace_placement(ShardId(0), Epoch(1), ids({1, 2}), ids({3})).is_ok());
  CHECK(map.set_leader_hint(ShardId(0), node_name(3)).code() == StatusCode::kInvalidArgument);
  CHECK(map.set_leader_hint(ShardId(0), node_name(9)).code() == StatusCode::kInvalidArgument);
  CHECK(map.set_leader_hint(ShardId(5), node_name(1)).code() == StatusCode::kInvalidArgument);
  REQUIRE(map.set_leader_hint(ShardId(0), node_name(2)).is_ok());
  CHECK(map.placement(ShardId(0)).leader_hint == node_name(2));
  REQUIRE(map.set_leader_hint(ShardId(0), NodeId()).is_ok());
  CHECK(map.placement(ShardId(0)).leader_hint.empty());
}

TEST_CASE("shard map: from_placements checks every placement", "[shard_map]") {
  const ShardMap map = initial_or_die(node_names(1, 3), 3, 3);
  Result<ShardMap> same = ShardMap::from_placements(3, map.placements());
  REQUIRE(same.is_ok());
  CHECK(*same == map);

  const auto refuse = [&](std::uint32_t r, std::vector<ShardPlacement> placements,
                          std::string_view text) {
    Result<ShardMap> built = ShardMap::from_placements(r, std::move(placements));
    REQUIRE_FALSE(built.is_ok());
    INFO(built.status().to_string());
    CHECK(mentions(built.status(), text));
  };
  refuse(3, {}, "shard_count 0");
  refuse(0, map.placements(), "replication_factor 0");
  std::vector<ShardPlacement> broken = map.placements();
  broken[1].epoch = Epoch(0);
  refuse(3, broken, "shard 1 has epoch 0");
  broken = map.placements();
  broken[2].replicas.clear();
  refuse(3, broken, "shard 2: a shard needs at least one replica");
  broken = map.placements();
  broken[0].leader_hint = node_name(8);
  refuse(3, broken, "leader hint node-8");
}

TEST_CASE("shard map: describe is one compact line", "[shard_map]") {
  ShardMap map = initial_or_die(ids({1, 2}), 2, 2);
  REQUIRE(map.replace_placement(ShardId(1), Epoch(1), ids({2}), ids({3})).is_ok());
  REQUIRE(map.set_leader_hint(ShardId(1), node_name(2)).is_ok());
  const std::string first = map.placement(ShardId(0)).replicas[0].str();
  const std::string second = map.placement(ShardId(0)).replicas[1].str();
  CHECK(map.describe() == "2 shards R=2 | node-1:1 node-2:2 node-3:0+1 | 0@1[" + first + " " +
                              second + "] 1@2[*node-2]+[node-3]");
  const ShardMap big = initial_or_die(node_names(1, 3), 64, 3);
  CHECK(big.describe().find("... (48 more)") != std::string::npos);
}

}  // namespace
}  // namespace nodenomad
