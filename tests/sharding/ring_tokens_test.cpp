// The token arrays under the ring, driven with hand-made tokens: XXH3
// collisions cannot be produced on purpose, but their tie-break must hold.
#include <catch2/catch.hpp>

#include <vector>

#include "sharding/ring_tokens.hpp"

namespace nodenomad::sharding_detail {
namespace {

struct Arrays {
  std::vector<std::uint64_t> tokens;
  std::vector<std::uint32_t> owners;
};

TEST_CASE("ring tokens: equal tokens are ordered by node id whatever the insertion order",
          "[ring_tokens]") {
  // Node table by id: "a" (slot 0), "b" (slot 1), "c" (slot 2).
  const std::vector<std::uint64_t> tokens_a{5, 100};
  const std::vector<std::uint64_t> tokens_b{100, 200};
  const std::vector<std::uint64_t> tokens_c{7, 100};

  // Order 1: b, then a (slot 0, shifting b to 1), then c (slot 2).
  Arrays first;
  merge_node_tokens(first.tokens, first.owners, tokens_b, 0);
  merge_node_tokens(first.tokens, first.owners, tokens_a, 0);
  merge_node_tokens(first.tokens, first.owners, tokens_c, 2);
  // Order 2: c (slot 0), a (slot 0), b (slot 1, between a and c).
  Arrays second;
  merge_node_tokens(second.tokens, second.owners, tokens_c, 0);
  merge_node_tokens(second.tokens, second.owners, tokens_a, 0);
  merge_node_tokens(second.tokens, second.owners, tokens_b, 1);

  const std::vector<std::uint64_t> expected_tokens{5, 7, 100, 100, 100, 200};
  const std::vector<std::uint32_t> expected_owners{0, 2, 0, 1, 2, 1};
  CHECK(first.tokens == expected_tokens);
  CHECK(first.owners == expected_owners);
  CHECK(second.tokens == expected_tokens);
  CHECK(second.owners == expected_owners);
  CHECK(tokens_ordered(first.tokens, first.owners));

  // A point on the shared token goes to the smallest id; the next point on.
  CHECK(first.owners[successor_slot(first.tokens, 100)] == 0);
  CHECK(first.owners[successor_slot(first.tokens, 101)] == 1);
  CHECK(first.owners[successor_slot(first.tokens, 6)] == 2);
}

TEST_CASE("ring tokens: erasing a node keeps the others and renumbers them", "[ring_tokens]") {
  Arrays arrays;
  merge_node_tokens(arrays.tokens, arrays.owners, std::vector<std::uint64_t>{10, 30}, 0);
  merge_node_tokens(arrays.tokens, arrays.owners, std::vector<std::uint64_t>{20, 30}, 1);
  merge_node_tokens(arrays.tokens, arrays.owners, std::vector<std::uint64_t>{30, 40}, 2);
  erase_node_tokens(arrays.tokens, arrays.owners, 1);
  CHECK(arrays.tokens == std::vector<std::uint64_t>{10, 30, 30, 40});
  CHECK(arrays.owners == std::vector<std::uint32_t>{0, 0, 1, 1});
  erase_node_tokens(arrays.tokens, arrays.owners, 0);
  CHECK(arrays.tokens == std::vector<std::uint64_t>{30, 40});
  CHECK(arrays.owners == std::vector<std::uint32_t>{0, 0});
}

TEST_CASE("ring tokens: successor_slot is a wrapping lower bound", "[ring_tokens]") {
  const std::vector<std::uint64_t> tokens{10, 20, 20, 30, UINT64_MAX - 1};
  CHECK(successor_slot(tokens, 0) == 0);
  CHECK(successor_slot(tokens, 10) == 0);
  CHECK(successor_slot(tokens, 11) == 1);
  CHECK(successor_slot(tokens, 20) == 1);
  CHECK(successor_slot(tokens, 21) == 3);
  CHECK(successor_slot(tokens, UINT64_MAX - 1) == 4);
  CHECK(successor_slot(tokens, UINT64_MAX) == 0);  // wraps
  const std::vector<std::uint64_t> single{42};
  CHECK(successor_slot(single, 41) == 0);
  CHECK(successor_slot(single, 43) == 0);
  // Every size and every point between tokens, against a linear scan.
  for (std::size_t size = 1; size <= 33; ++size) {
    std::vector<std::uint64_t> odd;
    for (std::size_t i = 0; i < size; ++i) odd.push_back(2 * i + 1);
    for (std::uint64_t point = 0; point <= 2 * size + 1; ++point) {
      std::size_t expected = 0;
      while (expected < size && odd[expected] < point) ++expected;
      if (expected == size) expected = 0;
      CHECK(successor_slot(odd, point) == expected);
    }
  }
}

}  // namespace
}  // namespace nodenomad::sharding_detail
