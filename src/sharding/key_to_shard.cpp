#include "nodenomad/sharding/key_to_shard.hpp"

#include <xxhash.h>

#include "nodenomad/assert.hpp"

namespace nodenomad {

namespace {

// The 64-bit linear congruential step of Lamping & Veach's paper; changing
// it would move every key to a different shard.
constexpr std::uint64_t kJumpLcgMultiplier = 2862933555777941757ULL;

}  // namespace

std::uint32_t jump_consistent_hash(std::uint64_t key, std::uint32_t bucket_count) {
  NN_ASSERT(bucket_count > 0, "jump_consistent_hash: bucket_count must be > 0");
  // Each step jumps from bucket b to the next bucket j > b at which this key
  // would have moved had the buckets grown one at a time. The walk ends past
  // bucket_count after about ln(bucket_count) steps; it always ends because
  // j > b on every step. b + 1 <= 2^32 - 1 and the factor is <= 2^31, so j
  // stays below 2^63 and the conversion from double is defined.
  std::int64_t bucket = -1;
  std::int64_t next = 0;
  while (next < static_cast<std::int64_t>(bucket_count)) {
    bucket = next;
    key = key * kJumpLcgMultiplier + 1;
    const double draw = static_cast<double>((key >> 33) + 1);
    next = static_cast<std::int64_t>(static_cast<double>(bucket + 1) *
                                     (static_cast<double>(std::int64_t{1} << 31) / draw));
  }
  return static_cast<std::uint32_t>(bucket);
}

ShardId shard_for_key(std::string_view key, std::uint32_t shard_count) {
  NN_ASSERT(shard_count > 0, "shard_for_key: shard_count must be > 0 (key of ", key.size(),
            " bytes)");
  const std::uint64_t hash = XXH3_64bits(key.data(), key.size());
  return ShardId(jump_consistent_hash(hash, shard_count));
}

}  // namespace nodenomad
