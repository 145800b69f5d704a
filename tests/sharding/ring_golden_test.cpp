// Pinned answers of the ring. Placement must be the same on every machine,
// compiler and release: if one of these changes, every cluster would move
// data after an upgrade. Only change them together with a documented,
// deliberate migration of the placement rule.
#include <catch2/catch.hpp>

#include <string_view>

#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "sharding/sharding_test_support.hpp"

using namespace std::string_view_literals;

namespace nodenomad {
namespace {

using sharding_test::node_names;
using sharding_test::ring_of;

TEST_CASE("ring golden: XXH3 matches the published test vector", "[ring][golden]") {
  // The xxHash project's own sanity value for XXH3_64bits of no bytes,
  // seed 0: proves the hash itself, independently of this code.
  CHECK(ring_position(""sv) == 0x2D06800538D394C2ULL);
}

TEST_CASE("ring golden: virtual node tokens are pinned", "[ring][golden]") {
  CHECK(ring_token(NodeId("node-1"), 0) == 0x3452cf15246fac7fULL);
  CHECK(ring_token(NodeId("node-10"), 255) == 0x81fee39f3632f9f6ULL);
  // The token is the hash of the documented label "<id>#<i>".
  CHECK(ring_token(NodeId("node-10"), 255) == ring_position("node-10#255"sv));
}

TEST_CASE("ring golden: key -> replicas on node-1..node-10 are pinned", "[ring][golden]") {
  const ConsistentHashRing ring = ring_of(node_names(1, 10));
  struct Golden {
    std::string_view key;
    std::uint64_t position;
    const char* replicas[3];
  };
  const Golden cases[] = {
      {"shard-0"sv, 0xcb6e75a9bf0c0560ULL, {"node-1", "node-6", "node-9"}},
      {"shard-1"sv, 0x282755f0073c6a93ULL, {"node-3", "node-7", "node-1"}},
      {"shard-17"sv, 0x7335ee78a791400aULL, {"node-6", "node-1", "node-2"}},
      {"shard-63"sv, 0x59709a4f275725d9ULL, {"node-6", "node-3", "node-10"}},
      {"user:42"sv, 0x9fc1e605fa7174aaULL, {"node-8", "node-6", "node-7"}},
      {""sv, 0x2d06800538d394c2ULL, {"node-8", "node-9", "node-10"}},
      {"\0\1\2"sv, 0x5f4299fc161c9cbbULL, {"node-7", "node-1", "node-3"}},
  };
  for (const Golden& golden : cases) {
    INFO("key of " << golden.key.size() << " bytes");
    CHECK(ring_position(golden.key) == golden.position);
    CHECK(ring.get_node_for_key(golden.key)->get() == NodeId(golden.replicas[0]));
    CHECK(ring.get_replica_nodes(golden.key, 3) ==
          std::vector<NodeId>{NodeId(golden.replicas[0]), NodeId(golden.replicas[1]),
                              NodeId(golden.replicas[2])});
  }
  CHECK(ring.balance().max_over_mean == Approx(1.033343).epsilon(1e-5));
}

}  // namespace
}  // namespace nodenomad
