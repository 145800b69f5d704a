// Contracts of ConsistentHashRing: errors, empty ring, replicas, weights,
// determinism, and agreement with an independent brute-force placement.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "sharding/sharding_test_support.hpp"

using namespace std::string_view_literals;

namespace nodenomad {
namespace {

using sharding_test::node_name;
using sharding_test::node_names;
using sharding_test::random_keys;
using sharding_test::ring_of;
using sharding_test::test_seed;

// Placement recomputed from the documented rule alone: every token of every
// node, sorted by (token, node id), and the first token at or after the key
// wins (wrapping). It shares nothing with the ring but ring_token().
struct ReferenceRing {
  std::vector<std::pair<std::uint64_t, NodeId>> tokens;

  ReferenceRing(const std::vector<NodeId>& nodes, std::uint32_t vnodes) {
    for (const NodeId& node : nodes) {
      for (std::uint32_t i = 0; i < vnodes; ++i) tokens.emplace_back(ring_token(node, i), node);
    }
    std::sort(tokens.begin(), tokens.end());
  }

  std::size_t first_slot(std::string_view key) const {
    const std::uint64_t point = ring_position(key);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].first >= point) return i;
    }
    return 0;
  }

  std::vector<NodeId> replicas(std::string_view key, std::size_t count) const {
    std::vector<NodeId> out;
    const std::size_t start = first_slot(key);
    for (std::size_t step = 0; step < tokens.size() && out.size() < count; ++step) {
      const NodeId& node = tokens[(start + step) % tokens.size()].second;
      if (std::find(out.begin(), out.end(), node) == out.end()) out.push_back(node);
    }
    return out;
  }
};

TEST_CASE("ring: an empty ring answers unavailable and no replicas", "[ring]") {
  ConsistentHashRing ring;
  const auto owner = ring.get_node_for_key("key");
  REQUIRE_FALSE(owner.is_ok());
  CHECK(owner.status().code() == StatusCode::kUnavailable);
  CHECK(ring.get_replica_nodes("key", 3).empty());
  CHECK(ring.node_count() == 0);
  CHECK(ring.nodes().empty());
  CHECK(ring.balance().shares.empty());

  REQUIRE(ring.add_node(node_name(1)).is_ok());
  REQUIRE(ring.remove_node(node_name(1)).is_ok());
  CHECK(ring.get_node_for_key("key").status().code() == StatusCode::kUnavailable);
  CHECK(ring.token_count() == 0);
}

TEST_CASE("ring: add_node and remove_node report what was wrong", "[ring]") {
  ConsistentHashRing ring;
  REQUIRE(ring.add_node(node_name(1)).is_ok());

  const Status duplicate = ring.add_node(node_name(1), 2.0);
  CHECK(duplicate.code() == StatusCode::kAlreadyExists);
  CHECK(duplicate.message().find("node-1") != std::string_view::npos);

  const Status empty_id = ring.add_node(NodeId(""));
  CHECK(empty_id.code() == StatusCode::kInvalidArgument);
  CHECK(empty_id.message().find("empty") != std::string_view::npos);

  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()}) {
    const Status status = ring.add_node(node_name(2), bad);
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK(status.message().find("finite number > 0") != std::string_view::npos);
  }
  const Status tiny = ring.add_node(node_name(2), 0.001);  // round(0.256) = 0 tokens
  CHECK(tiny.code() == StatusCode::kInvalidArgument);
  CHECK(tiny.message().find("smallest accepted weight") != std::string_view::npos);

  const Status huge = ring.add_node(node_name(2), 1e9);
  CHECK(huge.code() == StatusCode::kInvalidArgument);
  CHECK(huge.message().find("kMaxRingTokens") != std::string_view::npos);

  const Status missing = ring.remove_node(node_name(7));
  CHECK(missing.code() == StatusCode::kNotFound);
  CHECK(missing.message().find("node-7") != std::string_view::npos);

  // No failed call changed the ring.
  CHECK(ring.nodes() == std::vector<NodeId>{node_name(1)});
  CHECK(ring.token_count() == kDefaultVirtualNodesPerNode);
  CHECK(ring.weight_of(node_name(1)).value() == 1.0);
  CHECK(ring.weight_of(node_name(2)).status().code() == StatusCode::kNotFound);
}

TEST_CASE("ring: create validates virtual_nodes_per_node", "[ring]") {
  CHECK(ConsistentHashRing::create({.virtual_nodes_per_node = 0}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(ConsistentHashRing::create({.virtual_nodes_per_node = kMaxVirtualNodesPerNode + 1})
            .status()
            .code() == StatusCode::kInvalidArgument);
  auto ring = ConsistentHashRing::create({.virtual_nodes_per_node = 8});
  REQUIRE(ring.is_ok());
  CHECK(ring->virtual_nodes_per_node() == 8);
  REQUIRE(ring->add_node(node_name(1), 1.5).is_ok());
  CHECK(ring->token_count() == 12);  // round(1.5 * 8)
  REQUIRE(ring->add_node(node_name(2), 0.0625).is_ok());
  CHECK(ring->token_count() == 13);  // round(0.5) = 1: halves round away from zero
}

TEST_CASE("ring: contains, node_count and nodes() track membership in id order", "[ring]") {
  ConsistentHashRing ring;
  for (const int i : {3, 1, 10, 2}) REQUIRE(ring.add_node(node_name(i)).is_ok());
  CHECK(ring.node_count() == 4);
  CHECK(ring.contains(node_name(10)));
  CHECK_FALSE(ring.contains(node_name(4)));
  CHECK(ring.nodes() ==
        std::vector<NodeId>{node_name(1), node_name(10), node_name(2), node_name(3)});
  REQUIRE(ring.remove_node(node_name(10)).is_ok());
  CHECK_FALSE(ring.contains(node_name(10)));
  CHECK(ring.nodes() == std::vector<NodeId>{node_name(1), node_name(2), node_name(3)});
  CHECK(ring.token_count() == 3 * kDefaultVirtualNodesPerNode);
}

TEST_CASE("ring: a single node owns every key and the whole ring", "[ring]") {
  ConsistentHashRing ring;
  REQUIRE(ring.add_node(NodeId("solo")).is_ok());
  for (const std::string_view key : {""sv, "a"sv, "\0"sv, "\xff\xff"sv}) {
    CHECK(ring.get_node_for_key(key)->get() == NodeId("solo"));
    CHECK(ring.get_replica_nodes(key, 3) == std::vector<NodeId>{NodeId("solo")});
  }
  const RingBalance balance = ring.balance();
  REQUIRE(balance.shares.size() == 1);
  CHECK(balance.shares[0].arc_fraction == Approx(1.0));
  CHECK(balance.max_over_mean == Approx(1.0));
}

TEST_CASE("ring: placement matches a brute-force reference of the documented rule", "[ring]") {
  Rng rng(test_seed("ring reference"));
  const std::vector<NodeId> nodes = node_names(1, 7);
  auto ring = ConsistentHashRing::create({.virtual_nodes_per_node = 32});
  REQUIRE(ring.is_ok());
  for (const NodeId& node : nodes) REQUIRE(ring->add_node(node).is_ok());
  const ReferenceRing reference(nodes, 32);

  std::vector<std::string> keys = random_keys(rng, 2000, 9);
  keys.push_back("");
  // The key "<id>#<i>" hashes exactly onto that node's token i, which owns it.
  for (const NodeId& node : nodes) {
    keys.push_back(node.str() + "#0");
    keys.push_back(node.str() + "#31");
    CHECK(ring->get_node_for_key(node.str() + "#31")->get() == node);
  }
  // A key past the largest token wraps to the smallest one.
  const std::uint64_t largest = reference.tokens.back().first;
  std::size_t past_largest = 0;
  for (int attempt = 0; attempt < 1'000'000 && past_largest < 5; ++attempt) {
    std::string key = random_keys(rng, 1, 9)[0];
    if (ring_position(key) > largest) {
      CHECK(ring->get_node_for_key(key)->get() == reference.tokens.front().second);
      keys.push_back(std::move(key));
      ++past_largest;
    }
  }
  REQUIRE(past_largest == 5);
  for (const std::string& key : keys) {
    const std::vector<NodeId> expected = reference.replicas(key, 7);
    CHECK(ring->get_node_for_key(key)->get() == expected[0]);
    CHECK(ring->get_replica_nodes(key, 3) ==
          std::vector<NodeId>(expected.begin(), expected.begin() + 3));
    CHECK(ring->get_replica_nodes(key, 7) == expected);
  }
}

TEST_CASE("ring: replicas are distinct, start with the owner, and stop at the node count",
          "[ring]") {
  Rng rng(test_seed("ring replicas"));
  const ConsistentHashRing ring = ring_of(node_names(1, 20));
  for (const std::string& key : random_keys(rng, 5000, 16)) {
    for (const std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{5},
                                    std::size_t{17}, std::size_t{20}, std::size_t{50}}) {
      const std::vector<NodeId> replicas = ring.get_replica_nodes(key, count);
      REQUIRE(replicas.size() == std::min<std::size_t>(count, 20));
      CHECK(replicas.front() == ring.get_node_for_key(key)->get());
      CHECK(std::set<NodeId>(replicas.begin(), replicas.end()).size() == replicas.size());
    }
    CHECK(ring.get_replica_nodes(key, 0).empty());
  }
}

TEST_CASE("ring: answers do not depend on the order nodes were added", "[ring]") {
  Rng rng(test_seed("ring insertion order"));
  std::vector<NodeId> forward = node_names(1, 10);
  std::vector<NodeId> shuffled = forward;
  for (std::size_t i = shuffled.size() - 1; i > 0; --i) {
    std::swap(shuffled[i], shuffled[rng.uniform(i + 1)]);
  }
  std::vector<NodeId> backward(forward.rbegin(), forward.rend());
  const ConsistentHashRing a = ring_of(forward);
  const ConsistentHashRing b = ring_of(backward);
  const ConsistentHashRing c = ring_of(shuffled);
  // A ring that saw extra nodes come and go must end up the same too.
  ConsistentHashRing d = ring_of(node_names(5, 14));
  for (const int i : {11, 12, 13, 14}) REQUIRE(d.remove_node(node_name(i)).is_ok());
  for (const int i : {4, 3, 2, 1}) REQUIRE(d.add_node(node_name(i)).is_ok());

  for (const std::string& key : random_keys(rng, 20000, 16)) {
    const NodeId& owner = a.get_node_for_key(key)->get();
    CHECK(b.get_node_for_key(key)->get() == owner);
    CHECK(c.get_node_for_key(key)->get() == owner);
    CHECK(d.get_node_for_key(key)->get() == owner);
    const std::vector<NodeId> replicas = a.get_replica_nodes(key, 3);
    CHECK(b.get_replica_nodes(key, 3) == replicas);
    CHECK(d.get_replica_nodes(key, 3) == replicas);
  }
  const RingBalance balance_a = a.balance();
  const RingBalance balance_d = d.balance();
  for (std::size_t i = 0; i < balance_a.shares.size(); ++i) {
    CHECK(balance_a.shares[i].node == balance_d.shares[i].node);
    CHECK(balance_a.shares[i].arc_fraction == balance_d.shares[i].arc_fraction);
  }
}

TEST_CASE("ring: keys are binary-safe byte strings", "[ring]") {
  const ConsistentHashRing ring = ring_of(node_names(1, 10));
  const std::string_view with_zero = "shard\0-1"sv;
  REQUIRE(with_zero.size() == 8);
  CHECK(ring_position(with_zero) != ring_position("shard"));
  CHECK(ring_position(with_zero) != ring_position("shard\0-2"sv));
  // The lookup hashes every byte: it agrees with the position of the full key.
  const ReferenceRing reference(node_names(1, 10), kDefaultVirtualNodesPerNode);
  for (const std::string_view key : {with_zero, "shard\0-2"sv, "\0\0\0"sv, "\xff\x00\x80"sv}) {
    CHECK(ring.get_node_for_key(key)->get() == reference.replicas(key, 1)[0]);
  }
}

TEST_CASE("ring: a copy is an independent value", "[ring]") {
  ConsistentHashRing original = ring_of(node_names(1, 3));
  ConsistentHashRing copy = original;
  REQUIRE(copy.add_node(node_name(4)).is_ok());
  REQUIRE(copy.remove_node(node_name(1)).is_ok());
  CHECK(original.nodes() == node_names(1, 3));
  CHECK(original.token_count() == 3 * kDefaultVirtualNodesPerNode);
  CHECK(copy.nodes() == node_names(2, 4));
}

TEST_CASE("ring: balance shares sum to one and follow the weights", "[ring]") {
  ConsistentHashRing ring;
  REQUIRE(ring.add_node(node_name(1), 1.0).is_ok());
  REQUIRE(ring.add_node(node_name(2), 3.0).is_ok());
  const RingBalance balance = ring.balance();
  REQUIRE(balance.shares.size() == 2);
  CHECK(balance.shares[0].token_count == 256);
  CHECK(balance.shares[1].token_count == 768);
  CHECK(balance.shares[0].expected_fraction == Approx(0.25));
  CHECK(balance.shares[1].expected_fraction == Approx(0.75));
  CHECK(balance.shares[0].arc_fraction + balance.shares[1].arc_fraction == Approx(1.0));
  CHECK(balance.mean_fraction == Approx(0.5));
  CHECK(balance.max_over_mean == Approx(balance.max_fraction / 0.5));
  CHECK(balance.max_fraction >= balance.min_fraction);
}

}  // namespace
}  // namespace nodenomad
