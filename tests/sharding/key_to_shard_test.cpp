// shard_for_key and jump_consistent_hash: pinned answers, uniformity, and
// minimal movement when the shard count grows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "nodenomad/sharding/key_to_shard.hpp"
#include "sharding/sharding_test_support.hpp"

using namespace std::string_view_literals;

namespace nodenomad {
namespace {

using sharding_test::random_keys;
using sharding_test::test_seed;

TEST_CASE("key_to_shard: golden values are pinned", "[key_to_shard]") {
  // These answers are part of the on-disk contract: every key already stored
  // lives in the shard they name. A change of hash or of the jump step fails
  // here first.
  struct Golden {
    std::string_view key;
    std::uint32_t shard_count;
    std::uint64_t shard;
  };
  const Golden cases[] = {
      {""sv, 64, 52},          {""sv, 1000, 241},
      {"a"sv, 64, 14},         {"a"sv, 1000, 350},
      {"user:42"sv, 64, 25},   {"user:42"sv, 1000, 848},
      {"shard-17"sv, 64, 38},  {"shard-17"sv, 1000, 633},
      {"\0\1\2"sv, 64, 55},    {"\0\1\2"sv, 1000, 567},
      {"hello world"sv, 64, 33}, {"hello world"sv, 1000, 913},
  };
  for (const Golden& golden : cases) {
    INFO("key of " << golden.key.size() << " bytes, " << golden.shard_count << " shards");
    CHECK(shard_for_key(golden.key, golden.shard_count).value() == golden.shard);
  }
  CHECK(jump_consistent_hash(0xdeadbeef, 10) == 5);
  CHECK(jump_consistent_hash(0xdeadbeef, 1000) == 285);
  CHECK(jump_consistent_hash(UINT64_MAX, UINT32_MAX) == 2680453518u);
}

TEST_CASE("key_to_shard: jump hash agrees with other implementations", "[key_to_shard]") {
  // Values published with other implementations of the paper's algorithm
  // (for example ClickHouse's jumpConsistentHash tests): an independent
  // check that this one computes the same function, not just a stable one.
  CHECK(jump_consistent_hash(1, 1) == 0);
  CHECK(jump_consistent_hash(42, 57) == 43);
  CHECK(jump_consistent_hash(256, 1024) == 520);
  CHECK(jump_consistent_hash(3735883980ULL, 1) == 0);
  CHECK(jump_consistent_hash(3735883980ULL, 666) == 361);
  CHECK(jump_consistent_hash(16045690984833335023ULL, 255) == 237);
}

TEST_CASE("key_to_shard: one shard takes everything", "[key_to_shard]") {
  for (const std::string_view key : {""sv, "a"sv, "\0"sv}) {
    CHECK(shard_for_key(key, 1).value() == 0);
  }
}

TEST_CASE("key_to_shard: keys spread evenly over 64 shards", "[key_to_shard]") {
  Rng rng(test_seed("key_to_shard uniformity"));
  constexpr std::uint32_t kShards = 64;
  constexpr std::size_t kKeys = 640'000;
  std::vector<std::size_t> counts(kShards, 0);
  for (const std::string& key : random_keys(rng, kKeys, 16)) {
    const std::uint64_t shard = shard_for_key(key, kShards).value();
    REQUIRE(shard < kShards);
    ++counts[shard];
  }
  // Chi-square with 63 degrees of freedom: mean 63, standard deviation
  // about 11.2; 130 is six deviations out, so a failure means real bias.
  const double expected = static_cast<double>(kKeys) / kShards;
  double chi_square = 0.0;
  std::size_t max_count = 0;
  for (const std::size_t count : counts) {
    const double delta = static_cast<double>(count) - expected;
    chi_square += delta * delta / expected;
    max_count = std::max(max_count, count);
  }
  fmt::print("[key_to_shard uniformity] chi-square {:.1f} (63 dof); max/mean {:.4f}\n",
             chi_square, static_cast<double>(max_count) / expected);
  CHECK(chi_square < 130.0);
}

TEST_CASE("key_to_shard: growing the shard count moves keys only into the new shard",
          "[key_to_shard]") {
  Rng rng(test_seed("key_to_shard growth"));
  const std::vector<std::string> keys = random_keys(rng, 100'000, 16);
  for (const std::uint32_t count : {1u, 2u, 7u, 63u, 64u, 1000u}) {
    std::size_t moved = 0;
    for (const std::string& key : keys) {
      const std::uint64_t before = shard_for_key(key, count).value();
      const std::uint64_t after = shard_for_key(key, count + 1).value();
      if (before == after) continue;
      ++moved;
      CHECK(after == count);
    }
    // The expected share is 1/(count+1); allow six binomial deviations.
    const double expected = static_cast<double>(keys.size()) / (count + 1);
    const double deviation = std::sqrt(expected * (1.0 - 1.0 / (count + 1)));
    INFO(count << " -> " << count + 1 << " shards moved " << moved << " keys");
    CHECK(std::abs(static_cast<double>(moved) - expected) < 6.0 * deviation);
  }
}

TEST_CASE("key_to_shard: a large bucket count stays in range", "[key_to_shard]") {
  Rng rng(test_seed("key_to_shard range"));
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t key = rng.next_u64();
    CHECK(jump_consistent_hash(key, UINT32_MAX) < UINT32_MAX);
    CHECK(jump_consistent_hash(key, 3) < 3);
  }
}

}  // namespace
}  // namespace nodenomad
