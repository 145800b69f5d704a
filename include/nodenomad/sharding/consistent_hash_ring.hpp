// ConsistentHashRing: where each shard *should* live (desired placement).
//
// Thread safety: none. A ring is a plain value type: copy it to hand a
// snapshot to readers on other threads, or guard one instance with a lock.
// Every const method is safe to call concurrently with other const methods
// as long as nobody mutates the ring.
//
// Ownership and lifetime: the ring owns copies of the node ids it was given.
// get_node_for_key() answers a reference into the ring; it stays valid until
// the next add_node(), remove_node(), assignment, move or destruction of this
// ring. nodes() is invalidated by the same events.
//
// Placement contract (see docs/sharding.md):
//   - A node with weight w owns round(w * virtual_nodes_per_node) tokens. The
//     token of virtual node i of node `id` is XXH3_64bits of the bytes
//     "<id>#<i>" (i in decimal, seed 0).
//   - A key (any byte string, embedded zeros allowed) sits at XXH3_64bits(key)
//     and belongs to the first token clockwise at or after that position,
//     wrapping past 2^64 - 1 to the smallest token.
//   - Equal tokens of two nodes are ordered by node id (bytewise), so the
//     smaller id wins the key; answers never depend on insertion order.
//   - Everything is a pure function of the set of (node id, weight) pairs and
//     virtual_nodes_per_node: the same on every run, machine and compiler.
//   - Adding a node moves keys only onto that node; removing a node moves
//     only the keys it held.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// The token budget of one ring. It bounds memory (12 bytes per token) and the
// cost of add_node()/remove_node(), which rewrite the token arrays.
inline constexpr std::uint64_t kMaxRingTokens = 1u << 22;
// The largest accepted virtual_nodes_per_node.
inline constexpr std::uint32_t kMaxVirtualNodesPerNode = 1u << 16;
inline constexpr std::uint32_t kDefaultVirtualNodesPerNode = 256;

struct RingOptions {
  // Tokens a node of weight 1.0 gets; in [1, kMaxVirtualNodesPerNode].
  std::uint32_t virtual_nodes_per_node = kDefaultVirtualNodesPerNode;
};

// One node's part of the hash space.
struct NodeShare {
  NodeId node;
  double weight = 0.0;
  std::uint32_t token_count = 0;
  // Fraction of the 2^64 hash space the node owns, in [0, 1].
  double arc_fraction = 0.0;
  // Fraction it should own by weight: weight / total weight.
  double expected_fraction = 0.0;
};

// Balance of the whole ring. With equal weights, max_over_mean is the
// figure that matters: how much more than its fair share the busiest node
// holds. max_over_expected compares each node with its weighted share.
struct RingBalance {
  std::vector<NodeShare> shares;  // one per node, ordered by node id
  double mean_fraction = 0.0;     // 1 / node count
  double max_fraction = 0.0;
  double min_fraction = 0.0;
  double max_over_mean = 0.0;      // max_fraction / mean_fraction
  double max_over_expected = 0.0;  // max over nodes of arc / expected fraction
};

class ConsistentHashRing {
 public:
  // A reference to a node id owned by the ring (see lifetime above).
  using NodeRef = std::reference_wrapper<const NodeId>;

  // An empty ring with kDefaultVirtualNodesPerNode.
  ConsistentHashRing() = default;
  // An empty ring with the given options; kInvalidArgument when
  // virtual_nodes_per_node is outside [1, kMaxVirtualNodesPerNode].
  static Result<ConsistentHashRing> create(const RingOptions& options);

  // Adds a node owning round(weight * virtual_nodes_per_node) tokens.
  // kInvalidArgument: empty id, weight not finite or <= 0, a weight that
  // rounds to zero tokens, or a total beyond kMaxRingTokens.
  // kAlreadyExists: the id is already on the ring. On error nothing changes.
  Status add_node(const NodeId& node, double weight = 1.0);
  // kNotFound when the id is not on the ring. On error nothing changes.
  Status remove_node(const NodeId& node);

  // The node owning `key`. kUnavailable when the ring has no node. Costs one
  // hash and one binary search; never allocates when a node is found.
  Result<NodeRef> get_node_for_key(std::string_view key) const;

  // The first `count` distinct nodes met walking clockwise from `key`'s
  // position: element 0 is get_node_for_key(key). Fewer only when the ring
  // holds fewer than `count` nodes; empty for an empty ring or count == 0.
  std::vector<NodeId> get_replica_nodes(std::string_view key, std::size_t count) const;

  bool contains(const NodeId& node) const;
  std::size_t node_count() const { return node_ids_.size(); }
  // Node ids in bytewise order.
  const std::vector<NodeId>& nodes() const { return node_ids_; }
  // The node's weight; kNotFound when it is not on the ring.
  Result<double> weight_of(const NodeId& node) const;

  std::uint32_t virtual_nodes_per_node() const { return virtual_nodes_per_node_; }
  std::size_t token_count() const { return tokens_.size(); }

  // Per-node arc fractions and their spread. O(tokens + nodes).
  RingBalance balance() const;

 private:
  void check_invariants() const;

  std::uint32_t virtual_nodes_per_node_ = kDefaultVirtualNodesPerNode;
  // Nodes ordered by id; the three vectors are parallel.
  std::vector<NodeId> node_ids_;
  std::vector<double> weights_;
  std::vector<std::uint32_t> token_counts_;
  // Tokens ordered by (token, node id); owners_[i] indexes node_ids_ and
  // owns tokens_[i]. Because node_ids_ is ordered by id, comparing owner
  // indexes compares ids, which is how equal tokens are ordered.
  std::vector<std::uint64_t> tokens_;
  std::vector<std::uint32_t> owners_;
};

// The token of virtual node `vnode_index` of `node`: XXH3_64bits("<id>#<i>").
// Exposed so tests and tools can recompute placement independently.
std::uint64_t ring_token(const NodeId& node, std::uint32_t vnode_index);

// Where a key sits on the ring: XXH3_64bits(key), seed 0.
std::uint64_t ring_position(std::string_view key);

}  // namespace nodenomad
