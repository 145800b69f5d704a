// ShardDigest: a bucketed (Merkle-style, one level) fingerprint of one
// shard's stored state at an exact applied index, so that two replicas can
// find out whether they hold the same state and, if not, which 1/256th of
// the keys differ. StorageEngine::capture() takes the state; StateCapture
// digests it and exports the records of chosen buckets, and
// StorageEngine::replace_buckets() installs such an export on a replica
// (storage_engine.hpp). docs/storage.md ("Digests and bucket repair") says
// how the pieces fit.
//
// What a digest covers: every stored record, exactly - key, value, version
// and expiry, including keys that have expired but not yet been removed
// (apply is deterministic and expiry removals are replicated commands, so two
// correct replicas at the same index store the same expired keys) - and the
// engine-wide version floor. Not the applied index: root() is a fingerprint
// of the state alone, so digests are compared at the same index by the
// caller (`index` says which; operator== compares it too).
//
// Definition (stable: replicas of different builds must agree):
//   key_hash    = XXH3_64(key)                    bucket = key_hash >> 56
//   meta_hash   = XXH3_64_withSeed(version u64 | flags u8 | expiry_ms i64,
//                                  17 bytes little endian, seed = key_hash)
//                 flags bit 0: has expiry; expiry_ms is 0 without one
//   record_hash = XXH3_64_withSeed(value, seed = meta_hash)
//   buckets[b]  = sum of record_hash over the records of bucket b, mod 2^64
//   root()      = XXH3_64_withSeed(version_floor | keys | bytes |
//                                  buckets[0..255], little endian, kRootSeed)
// XXH3 mixes the input length in, so key and value boundaries are unambiguous.
//
// Why a sum: the records of a bucket are visited in hash-table order, which
// differs between replicas holding the same state (one restored from a
// snapshot, one that applied writes one by one), so the combination must not
// depend on order. A sum does not (XOR would not either, but XOR cancels two
// equal terms; keys are unique, so no record hash is ever added twice).
// Two differing bucket contents give the same sum only if the record hashes
// of their symmetric difference happen to cancel mod 2^64: for hashes that
// behave like independent random 64-bit values, a chance of 2^-64 per
// differing bucket. That is the setting here: divergence comes from bugs and
// damaged disks, not from an adversary, and XXH3 is not a cryptographic hash
// (someone choosing keys and values on purpose could build colliding sets).
//
// Thread safety: values and free functions; safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

inline constexpr std::uint32_t kDigestBuckets = 256;

// The bucket of `key`: the top 8 bits of XXH3_64(key), in [0, kDigestBuckets).
std::uint32_t digest_bucket(std::string_view key);
// The same from the key's XXH3_64, for a caller that has it already.
constexpr std::uint32_t digest_bucket_of_hash(std::uint64_t key_hash) {
  return static_cast<std::uint32_t>(key_hash >> 56);
}

// One record's term in its bucket's sum (the definition above). Public so
// that a digest can be recomputed from any dump of the state.
std::uint64_t digest_record_hash(std::string_view key, std::string_view value,
                                 std::uint64_t version, std::optional<WallTime> expiry);

struct ShardDigest {
  LogIndex index;                     // the applied index the state reflects
  std::uint64_t keys = 0;             // stored keys, expired-but-not-removed included
  std::uint64_t bytes = 0;            // key + value bytes of those keys
  std::uint64_t version_floor = 0;    // the engine-wide floor (storage.md, "Versions")
  std::array<std::uint64_t, kDigestBuckets> buckets{};

  // A hash over everything above but `index` (the definition above).
  std::uint64_t root() const;
  // The buckets (ascending) whose sums differ. Empty while the roots still
  // differ means only the version floor differs (keys and bytes follow the
  // buckets); replace_buckets() of any bucket set, even none, repairs it.
  std::vector<std::uint32_t> differing_buckets(const ShardDigest& other) const;
  bool operator==(const ShardDigest&) const = default;
};

// The digest's wire form: kShardDigestEncodedBytes bytes, ending with a
// checksum. Layout:
//
//   +-----------+------------+-----------+----------+-----------+-------------------+
//   | magic u32 | format u16 | index u64 | keys u64 | bytes u64 | version_floor u64 |
//   | "NNSD"    | = 1        |           |          |           |                   |
//   +-----------+------------+-----------+----------+-----------+-------------------+
//   +------------------+---------------------------+--------------+
//   | bucket_count u16 | bucket_count x bucket u64 | checksum u64 |
//   | = 256            |                           |              |
//   +------------------+---------------------------+--------------+
//   little endian; checksum = XXH3_64 of every byte before it.
inline constexpr std::size_t kShardDigestEncodedBytes = 4 + 2 + 4 * 8 + 2 + kDigestBuckets * 8 + 8;
std::string encode_shard_digest(const ShardDigest& digest);
// Reads untrusted bytes (a peer's reply): nothing is allocated from a length
// in the input. kCorruption naming the field for a truncated, over-long,
// inconsistent (keys without bytes, buckets of an empty state) or damaged
// (checksum) encoding, or an unknown magic, format or bucket count.
Result<ShardDigest> decode_shard_digest(std::string_view bytes);

}  // namespace nodenomad
