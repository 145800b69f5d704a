// Statistical properties of the ring with the default 256 virtual nodes and
// a million random keys: balance, minimal movement on add and remove, and
// weights. The seed changes the keys, not the ring, so the bounds below hold
// for every seed; each test prints what it measured.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "sharding/sharding_test_support.hpp"

namespace nodenomad {
namespace {

using sharding_test::node_name;
using sharding_test::node_names;
using sharding_test::owners_of;
using sharding_test::random_keys;
using sharding_test::ring_of;
using sharding_test::test_seed;

constexpr std::size_t kKeyCount = 1'000'000;
constexpr std::size_t kKeySizeBytes = 16;

std::map<NodeId, std::size_t> count_by_node(const std::vector<NodeId>& owners) {
  std::map<NodeId, std::size_t> counts;
  for (const NodeId& owner : owners) ++counts[owner];
  return counts;
}

TEST_CASE("ring properties: 10 equal nodes hold under 1.15x the mean key load", "[ring][slow]") {
  Rng rng(test_seed("ring balance"));
  const ConsistentHashRing ring = ring_of(node_names(1, 10));
  const std::vector<std::string> keys = random_keys(rng, kKeyCount, kKeySizeBytes);
  const auto counts = count_by_node(owners_of(ring, keys));
  REQUIRE(counts.size() == 10);

  std::size_t max_keys = 0;
  std::size_t min_keys = kKeyCount;
  for (const auto& [node, keys_held] : counts) {
    max_keys = std::max(max_keys, keys_held);
    min_keys = std::min(min_keys, keys_held);
  }
  const double mean_keys = static_cast<double>(kKeyCount) / 10.0;
  const double key_max_over_mean = static_cast<double>(max_keys) / mean_keys;
  const RingBalance balance = ring.balance();
  fmt::print("[ring balance] keys max/mean {:.4f} min/mean {:.4f}; arcs max/mean {:.4f}\n",
             key_max_over_mean, static_cast<double>(min_keys) / mean_keys,
             balance.max_over_mean);
  CHECK(key_max_over_mean < 1.15);
  CHECK(balance.max_over_mean < 1.15);
  // Keys follow the arcs: a node's key share is its arc share up to
  // sampling noise (one standard deviation is about 0.0003 here).
  for (const NodeShare& share : balance.shares) {
    const double key_fraction = static_cast<double>(counts.at(share.node)) / kKeyCount;
    CHECK(key_fraction == Approx(share.arc_fraction).margin(0.002));
  }
}

TEST_CASE("ring properties: an 11th node takes about 1/11 of the keys, all onto itself",
          "[ring][slow]") {
  Rng rng(test_seed("ring add node"));
  ConsistentHashRing ring = ring_of(node_names(1, 10));
  const std::vector<std::string> keys = random_keys(rng, kKeyCount, kKeySizeBytes);
  const std::vector<NodeId> before = owners_of(ring, keys);
  REQUIRE(ring.add_node(node_name(11)).is_ok());
  const std::vector<NodeId> after = owners_of(ring, keys);

  std::size_t moved = 0;
  std::size_t moved_elsewhere = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (before[i] == after[i]) continue;
    ++moved;
    if (after[i] != node_name(11)) ++moved_elsewhere;
  }
  const double moved_fraction = static_cast<double>(moved) / kKeyCount;
  double new_arc = 0.0;
  for (const NodeShare& share : ring.balance().shares) {
    if (share.node == node_name(11)) new_arc = share.arc_fraction;
  }
  fmt::print("[ring add node] moved {:.4f} of keys (1/11 = {:.4f}); node-11 arc {:.4f}\n",
             moved_fraction, 1.0 / 11.0, new_arc);
  CHECK(moved_elsewhere == 0);
  // One node's share has a relative spread of 1/sqrt(256) = 6.25%, about
  // 0.0057 here: the window is about 2.6 of those around 1/11.
  CHECK(moved_fraction > 1.0 / 11.0 - 0.015);
  CHECK(moved_fraction < 1.0 / 11.0 + 0.015);
  // What moved is exactly the new node's arc, up to key sampling noise.
  CHECK(moved_fraction == Approx(new_arc).margin(0.002));
}

TEST_CASE("ring properties: removing a node moves only that node's keys", "[ring][slow]") {
  Rng rng(test_seed("ring remove node"));
  ConsistentHashRing ring = ring_of(node_names(1, 10));
  const std::vector<std::string> keys = random_keys(rng, kKeyCount, kKeySizeBytes);
  const std::vector<NodeId> before = owners_of(ring, keys);
  REQUIRE(ring.remove_node(node_name(4)).is_ok());
  const std::vector<NodeId> after = owners_of(ring, keys);

  std::size_t moved = 0;
  std::size_t held_by_removed = 0;
  std::size_t wrongly_moved = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const bool was_on_removed = before[i] == node_name(4);
    held_by_removed += was_on_removed ? 1 : 0;
    if (before[i] == after[i]) continue;
    ++moved;
    if (!was_on_removed) ++wrongly_moved;
  }
  fmt::print("[ring remove node] moved {:.4f} of keys; node-4 held {:.4f}\n",
             static_cast<double>(moved) / kKeyCount,
             static_cast<double>(held_by_removed) / kKeyCount);
  CHECK(wrongly_moved == 0);
  CHECK(moved == held_by_removed);
  CHECK(held_by_removed > 0);
}

TEST_CASE("ring properties: a weight-2 node gets about twice the share of a weight-1 node",
          "[ring][slow]") {
  Rng rng(test_seed("ring weights"));
  ConsistentHashRing ring = ring_of(node_names(1, 10));
  REQUIRE(ring.add_node(NodeId("node-big"), 2.0).is_ok());
  const std::vector<std::string> keys = random_keys(rng, kKeyCount, kKeySizeBytes);
  const auto counts = count_by_node(owners_of(ring, keys));

  std::size_t unit_keys = 0;
  for (const NodeId& node : node_names(1, 10)) unit_keys += counts.at(node);
  const double unit_mean = static_cast<double>(unit_keys) / 10.0;
  const double big_ratio = static_cast<double>(counts.at(NodeId("node-big"))) / unit_mean;
  const RingBalance balance = ring.balance();
  fmt::print("[ring weights] weight-2 node holds {:.3f}x a weight-1 node's mean; "
             "max arc/expected {:.4f}\n",
             big_ratio, balance.max_over_expected);
  CHECK(ring.weight_of(NodeId("node-big")).value() == 2.0);
  // 512 tokens give a relative spread of 1/sqrt(512), about 4.4%.
  CHECK(big_ratio > 1.8);
  CHECK(big_ratio < 2.2);
  double max_over_expected = 0.0;
  for (const NodeShare& share : balance.shares) {
    CHECK(share.token_count == (share.node == NodeId("node-big") ? 512u : 256u));
    CHECK(share.expected_fraction == Approx(share.weight / 12.0));
    max_over_expected = std::max(max_over_expected, share.arc_fraction / share.expected_fraction);
  }
  CHECK(balance.max_over_expected == Approx(max_over_expected));
}

}  // namespace
}  // namespace nodenomad
