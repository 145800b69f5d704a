// The token arrays behind ConsistentHashRing, as free functions so that tests
// can drive them with hand-made tokens (real XXH3 collisions cannot be found
// on purpose, yet their tie-break must be tested).
//
// Layout: two parallel arrays. tokens[i] is a position on the 2^64 ring and
// owners[i] the index of the node owning it, in a node table ordered by node
// id. The arrays are ordered by (token, owner), so equal tokens are ordered
// by node id. A lookup touches only the contiguous uint64 array, then one
// uint32.
//
// Thread safety: none; these functions mutate the vectors they are given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace nodenomad::sharding_detail {

// The slot of the first token at or after `point`, wrapping to slot 0 past
// the largest token. Precondition: tokens is non-empty and sorted.
inline std::size_t successor_slot(std::span<const std::uint64_t> tokens, std::uint64_t point) {
  // Branchless lower bound: the loop runs log2(size) times whatever the data
  // and the step compiles to a conditional move, so a lookup pays for cache
  // misses but not for mispredicted branches.
  const std::uint64_t* const first = tokens.data();
  const std::uint64_t* base = first;
  std::size_t length = tokens.size();
  while (length > 1) {
    const std::size_t half = length / 2;
    base = (base[half - 1] < point) ? base + half : base;
    length -= half;
  }
  const std::size_t slot = static_cast<std::size_t>(base - first) + (*base < point ? 1 : 0);
  return slot == tokens.size() ? 0 : slot;
}

// Inserts a node at index `slot` of the node table: owners at or after
// `slot` shift up by one, and `fresh_sorted` (the new node's tokens, sorted)
// is merged in. On a token equal to an existing one, the smaller owner index
// (the smaller node id) goes first.
void merge_node_tokens(std::vector<std::uint64_t>& tokens, std::vector<std::uint32_t>& owners,
                       std::span<const std::uint64_t> fresh_sorted, std::uint32_t slot);

// Removes node `slot` of the node table: drops its tokens and shifts later
// owners down by one. Keeps the order of everything else.
void erase_node_tokens(std::vector<std::uint64_t>& tokens, std::vector<std::uint32_t>& owners,
                       std::uint32_t slot);

// True when the arrays are parallel and ordered by (token, owner).
bool tokens_ordered(std::span<const std::uint64_t> tokens, std::span<const std::uint32_t> owners);

}  // namespace nodenomad::sharding_detail
