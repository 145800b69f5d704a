#include "nodenomad/sharding/consistent_hash_ring.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string>

#include "nodenomad/assert.hpp"
#include "sharding/ring_tokens.hpp"

namespace nodenomad {

namespace {

// 2^-64: turns an arc length in hash units into a fraction of the ring.
constexpr double kHashSpaceFraction = 0x1p-64;
// get_replica_nodes() remembers up to this many picked nodes on the stack;
// larger requests use a bitmap over all nodes.
constexpr std::size_t kInlineReplicaLimit = 16;

// The `count` tokens of `node`, sorted ascending. The "<id>#" prefix is
// written once and only the decimal index is rewritten per token.
std::vector<std::uint64_t> make_sorted_tokens(const NodeId& node, std::uint32_t count) {
  std::vector<std::uint64_t> tokens;
  tokens.reserve(count);
  std::string label = node.str();
  label.push_back('#');
  const std::size_t prefix_size = label.size();
  std::array<char, 16> digits{};
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto [end, error] = std::to_chars(digits.data(), digits.data() + digits.size(), i);
    NN_ASSERT(error == std::errc(), "a uint32 fits in 16 decimal digits");
    label.resize(prefix_size);
    label.append(digits.data(), end);
    tokens.push_back(XXH3_64bits(label.data(), label.size()));
  }
  std::sort(tokens.begin(), tokens.end());
  return tokens;
}

}  // namespace

std::uint64_t ring_token(const NodeId& node, std::uint32_t vnode_index) {
  const std::string label = node.str() + "#" + std::to_string(vnode_index);
  return XXH3_64bits(label.data(), label.size());
}

std::uint64_t ring_position(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Result<ConsistentHashRing> ConsistentHashRing::create(const RingOptions& options) {
  if (options.virtual_nodes_per_node < 1 ||
      options.virtual_nodes_per_node > kMaxVirtualNodesPerNode) {
    return Status::invalid_argument(fmt::format(
        "ConsistentHashRing: virtual_nodes_per_node {} is out of range; accepted: 1 to {}",
        options.virtual_nodes_per_node, kMaxVirtualNodesPerNode));
  }
  ConsistentHashRing ring;
  ring.virtual_nodes_per_node_ = options.virtual_nodes_per_node;
  return ring;
}

Status ConsistentHashRing::add_node(const NodeId& node, double weight) {
  if (node.empty()) {
    return Status::invalid_argument("add_node: the node id is empty; a non-empty id is required");
  }
  if (!std::isfinite(weight) || weight <= 0.0) {
    return Status::invalid_argument(fmt::format(
        "add_node({}): weight {} is not accepted; the weight must be a finite number > 0",
        node.str(), weight));
  }
  const double wanted_tokens = std::round(weight * virtual_nodes_per_node_);
  if (wanted_tokens < 1.0) {
    return Status::invalid_argument(fmt::format(
        "add_node({}): weight {} gives round({} * {}) = 0 virtual nodes; the smallest accepted "
        "weight is {}",
        node.str(), weight, weight, virtual_nodes_per_node_, 0.5 / virtual_nodes_per_node_));
  }
  const std::uint64_t room = kMaxRingTokens - tokens_.size();
  if (wanted_tokens > static_cast<double>(room)) {
    return Status::invalid_argument(fmt::format(
        "add_node({}): weight {} needs {} virtual nodes but the ring holds {} of at most {} "
        "(kMaxRingTokens); lower the weight or virtual_nodes_per_node",
        node.str(), weight, wanted_tokens, tokens_.size(), kMaxRingTokens));
  }
  const auto position = std::lower_bound(node_ids_.begin(), node_ids_.end(), node);
  if (position != node_ids_.end() && *position == node) {
    return Status::already_exists(
        fmt::format("add_node({}): the node is already on the ring", node.str()));
  }

  const auto slot = static_cast<std::uint32_t>(position - node_ids_.begin());
  const auto count = static_cast<std::uint32_t>(wanted_tokens);
  const std::vector<std::uint64_t> fresh = make_sorted_tokens(node, count);

  // Nodes after `slot` shift up by one index; the new tokens merge in.
  sharding_detail::merge_node_tokens(tokens_, owners_, fresh, slot);
  node_ids_.insert(position, node);
  weights_.insert(weights_.begin() + slot, weight);
  token_counts_.insert(token_counts_.begin() + slot, count);
  check_invariants();
  return Status::ok();
}

Status ConsistentHashRing::remove_node(const NodeId& node) {
  const auto position = std::lower_bound(node_ids_.begin(), node_ids_.end(), node);
  if (position == node_ids_.end() || *position != node) {
    return Status::not_found(fmt::format("remove_node({}): no such node on the ring ({} nodes)",
                                         node.str(), node_ids_.size()));
  }
  const auto slot = static_cast<std::uint32_t>(position - node_ids_.begin());
  sharding_detail::erase_node_tokens(tokens_, owners_, slot);
  node_ids_.erase(position);
  weights_.erase(weights_.begin() + slot);
  token_counts_.erase(token_counts_.begin() + slot);
  check_invariants();
  return Status::ok();
}

Result<ConsistentHashRing::NodeRef> ConsistentHashRing::get_node_for_key(
    std::string_view key) const {
  if (tokens_.empty()) {
    return Status::unavailable("get_node_for_key: the ring has no node");
  }
  return NodeRef(node_ids_[owners_[sharding_detail::successor_slot(tokens_, ring_position(key))]]);
}

std::vector<NodeId> ConsistentHashRing::get_replica_nodes(std::string_view key,
                                                          std::size_t count) const {
  std::vector<NodeId> replicas;
  const std::size_t wanted = std::min(count, node_ids_.size());
  if (wanted == 0) return replicas;
  replicas.reserve(wanted);

  // Remember which owners were taken: a short stack list for the usual
  // replication factors, a bitmap over all nodes beyond that.
  std::array<std::uint32_t, kInlineReplicaLimit> picked_inline{};
  std::vector<bool> picked_bitmap;
  const bool use_bitmap = wanted > kInlineReplicaLimit;
  if (use_bitmap) picked_bitmap.assign(node_ids_.size(), false);
  const auto already_picked = [&](std::uint32_t owner) {
    if (use_bitmap) return static_cast<bool>(picked_bitmap[owner]);
    const auto end = picked_inline.begin() + static_cast<std::ptrdiff_t>(replicas.size());
    return std::find(picked_inline.begin(), end, owner) != end;
  };

  // One full turn meets every node, since each owns at least one token.
  std::size_t slot = sharding_detail::successor_slot(tokens_, ring_position(key));
  for (std::size_t step = 0; step < tokens_.size() && replicas.size() < wanted; ++step) {
    const std::uint32_t owner = owners_[slot];
    if (!already_picked(owner)) {
      if (use_bitmap) {
        picked_bitmap[owner] = true;
      } else {
        picked_inline[replicas.size()] = owner;
      }
      replicas.push_back(node_ids_[owner]);
    }
    slot = slot + 1 == tokens_.size() ? 0 : slot + 1;
  }
  NN_ASSERT(replicas.size() == wanted, "a full turn of the ring found ", replicas.size(), " of ",
            wanted, " nodes");
  return replicas;
}

bool ConsistentHashRing::contains(const NodeId& node) const {
  return std::binary_search(node_ids_.begin(), node_ids_.end(), node);
}

Result<double> ConsistentHashRing::weight_of(const NodeId& node) const {
  const auto position = std::lower_bound(node_ids_.begin(), node_ids_.end(), node);
  if (position == node_ids_.end() || *position != node) {
    return Status::not_found(fmt::format("weight_of({}): no such node on the ring", node.str()));
  }
  return weights_[static_cast<std::size_t>(position - node_ids_.begin())];
}

RingBalance ConsistentHashRing::balance() const {
  RingBalance result;
  const std::size_t node_count = node_ids_.size();
  if (node_count == 0) return result;

  // Token i owns the arc (token[i-1], token[i]]; the first token's arc wraps
  // around from the last. Unsigned subtraction gives the wrapped length.
  std::vector<double> arcs(node_count, 0.0);
  if (tokens_.front() == tokens_.back()) {
    arcs[owners_.front()] = 1.0;  // every token is equal: the first owns all
  } else {
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const std::uint64_t previous = i == 0 ? tokens_.back() : tokens_[i - 1];
      arcs[owners_[i]] += static_cast<double>(tokens_[i] - previous) * kHashSpaceFraction;
    }
  }

  double total_weight = 0.0;
  for (const double weight : weights_) total_weight += weight;
  result.mean_fraction = 1.0 / static_cast<double>(node_count);
  result.min_fraction = arcs[0];
  result.shares.reserve(node_count);
  for (std::size_t i = 0; i < node_count; ++i) {
    NodeShare share{node_ids_[i], weights_[i], token_counts_[i], arcs[i],
                    weights_[i] / total_weight};
    result.max_fraction = std::max(result.max_fraction, share.arc_fraction);
    result.min_fraction = std::min(result.min_fraction, share.arc_fraction);
    result.max_over_expected =
        std::max(result.max_over_expected, share.arc_fraction / share.expected_fraction);
    result.shares.push_back(std::move(share));
  }
  result.max_over_mean = result.max_fraction / result.mean_fraction;
  return result;
}

void ConsistentHashRing::check_invariants() const {
  NN_ASSERT(weights_.size() == node_ids_.size() && token_counts_.size() == node_ids_.size(),
            "node arrays out of step");
  NN_ASSERT(tokens_.size() == owners_.size(), "token arrays out of step");
  NN_ASSERT(tokens_.size() <= kMaxRingTokens, "token budget exceeded: ", tokens_.size());
  std::uint64_t counted = 0;
  for (std::size_t i = 0; i < node_ids_.size(); ++i) {
    NN_ASSERT(i == 0 || node_ids_[i - 1] < node_ids_[i], "node ids not strictly ordered at ", i);
    NN_ASSERT(token_counts_[i] >= 1, "node ", node_ids_[i], " owns no token");
    counted += token_counts_[i];
  }
  NN_ASSERT(counted == tokens_.size(), "token counts sum to ", counted, " but the ring holds ",
            tokens_.size());
  for (const std::uint32_t owner : owners_) {
    NN_ASSERT(owner < node_ids_.size(), "a token has a dangling owner ", owner);
  }
  NN_ASSERT(sharding_detail::tokens_ordered(tokens_, owners_),
            "tokens not ordered by (token, node id)");
}

}  // namespace nodenomad
