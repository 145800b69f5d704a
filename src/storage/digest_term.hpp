// One record's term in its digest bucket's sum: the record_hash of
// shard_digest.hpp's definition, which is stable (replicas of different
// builds must agree). Here, header-only, because every Record computes its
// own when it is built (record.hpp), so that the KvMap keeps the digest's
// sums up to date as records enter and leave it (kv_map.hpp, "Digest").
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace nodenomad::storage {

inline std::uint64_t key_hash_of(std::string_view key) {
  return XXH3_64bits(key.data(), key.size());
}

// meta_hash = XXH3_64_withSeed(version u64 | flags u8 | expiry_ms i64, seed
// key_hash), 17 bytes little endian, flags bit 0 = has expiry, expiry_ms 0
// without one; the term = XXH3_64_withSeed(value, seed meta_hash).
inline std::uint64_t digest_term(std::uint64_t key_hash, std::string_view value,
                                 std::uint64_t version, bool has_expiry, std::int64_t expiry_ms) {
  constexpr std::size_t kMetaBytes = 8 + 1 + 8;
  char meta[kMetaBytes];
  for (int i = 0; i < 8; ++i) meta[i] = static_cast<char>((version >> (8 * i)) & 0xff);
  meta[8] = static_cast<char>(has_expiry ? 1 : 0);
  const auto expiry = static_cast<std::uint64_t>(has_expiry ? expiry_ms : 0);
  for (int i = 0; i < 8; ++i) meta[9 + i] = static_cast<char>((expiry >> (8 * i)) & 0xff);
  const std::uint64_t meta_hash = XXH3_64bits_withSeed(meta, sizeof(meta), key_hash);
  return XXH3_64bits_withSeed(value.data(), value.size(), meta_hash);
}

}  // namespace nodenomad::storage
