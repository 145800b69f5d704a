// Key -> shard: which of the cluster's fixed `shard_count` shards holds a key.
//
// Thread safety: pure functions of their arguments; safe from any thread.
//
// Contract: shard_for_key(key, S) = jump_consistent_hash(XXH3_64bits(key), S)
// (XXH3 with seed 0; Lamping & Veach, "A Fast, Minimal Memory, Consistent
// Hash Algorithm", 2014). The answer is the same on every run, machine and
// compiler: the hash is byte-exact and the jump step uses IEEE-754 double
// arithmetic, which every supported target performs identically. Keys are
// binary-safe byte strings. Growing S to S + 1 moves a key only into the new
// shard S, and about 1 / (S + 1) of the keys move.
//
// Precondition: shard_count > 0. The shard count is fixed when the cluster is
// created and validated where it is parsed, so zero here is a programmer
// error: NN_ASSERT aborts with a message rather than returning a Status.
#pragma once

#include <cstdint>
#include <string_view>

#include "nodenomad/types.hpp"

namespace nodenomad {

// The shard of `key`, in [0, shard_count). Aborts if shard_count == 0.
ShardId shard_for_key(std::string_view key, std::uint32_t shard_count);

// Jump consistent hash of a 64-bit key into [0, bucket_count).
// Aborts if bucket_count == 0.
std::uint32_t jump_consistent_hash(std::uint64_t key, std::uint32_t bucket_count);

}  // namespace nodenomad
