// Helpers shared by the sharding tests: the run's seed, natural node names,
// and seeded binary keys.
#pragma once

#include "support/test_seed.hpp"
#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::sharding_test {

inline constexpr std::uint64_t kDefaultSeed = 20240611;

// NODENOMAD_SEED when set (decimal or 0x-hex), else kDefaultSeed. Printed so
// a failing run can be replayed with the same seed.
inline std::uint64_t test_seed(std::string_view test_name) {
  return test_support::test_seed(test_name, kDefaultSeed);
}

inline NodeId node_name(int i) { return NodeId(fmt::format("node-{}", i)); }

// Nodes "node-<first>" .. "node-<last>", inclusive.
inline std::vector<NodeId> node_names(int first, int last) {
  std::vector<NodeId> names;
  for (int i = first; i <= last; ++i) names.push_back(node_name(i));
  return names;
}

// `count` random keys of `size_bytes` bytes each, any byte value (zeros too).
inline std::vector<std::string> random_keys(Rng& rng, std::size_t count, std::size_t size_bytes) {
  std::vector<std::string> keys(count, std::string(size_bytes, '\0'));
  for (std::string& key : keys) {
    for (std::size_t i = 0; i < size_bytes; i += 8) {
      std::uint64_t bits = rng.next_u64();
      for (std::size_t b = i; b < size_bytes && b < i + 8; ++b) {
        key[b] = static_cast<char>(bits & 0xff);
        bits >>= 8;
      }
    }
  }
  return keys;
}

inline ConsistentHashRing ring_of(const std::vector<NodeId>& nodes) {
  ConsistentHashRing ring;
  for (const NodeId& node : nodes) {
    const Status status = ring.add_node(node);
    NN_ASSERT(status.is_ok(), status.to_string());
  }
  return ring;
}

// The owner of every key, in the order of `keys`.
inline std::vector<NodeId> owners_of(const ConsistentHashRing& ring,
                                     const std::vector<std::string>& keys) {
  std::vector<NodeId> owners;
  owners.reserve(keys.size());
  for (const std::string& key : keys) owners.push_back(ring.get_node_for_key(key)->get());
  return owners;
}

}  // namespace nodenomad::sharding_test
