// Helpers shared by the shard digest and bucket repair tests: replicated
// in-memory engines, a seeded random log that builds a varied state (sets,
// TTLs, removes, lost compare-and-sets, expire commands), a digest computed
// independently from a dump, and a hand-built bucket export.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/record_format.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "storage/byte_codec.hpp"
#include "storage/snapshot.hpp"
#include "storage/snapshot_format.hpp"
#include "storage/storage_test_util.hpp"

namespace nodenomad::digest_test {

using storage_test::ModelEntry;
using storage_test::ModelState;
using storage_test::ms_time;

inline const WallTime kT0 = ms_time(5'000'000);

inline std::unique_ptr<StorageEngine> open_replicated(std::size_t max_value_bytes = 1u << 20) {
  StorageOptions options;  // in memory
  options.mode = StorageMode::kReplicated;
  options.max_value_bytes = max_value_bytes;
  return storage_test::open_or_fail(options);
}

inline void apply_ok(StorageEngine& engine, LogIndex index, const std::string& command) {
  auto applied = engine.apply(index, command);
  INFO(applied.status().to_string());
  REQUIRE(applied.is_ok());
}

// Applies `command` at the engine's next index.
inline void apply_next(StorageEngine& engine, const std::string& command) {
  apply_ok(engine, engine.last_applied_index().next(), command);
}

// An empty command: advances the index only (the leader's no-op entry).
inline void apply_noop(StorageEngine& engine) { apply_next(engine, std::string()); }

inline std::string set_command(std::string_view key, std::string_view value, WallTime at,
                               std::optional<WallTime> expiry = std::nullopt) {
  KvCommand command;
  command.issued_at = at;
  command.key = key;
  command.value = value;
  command.expiry = expiry;
  return encode_kv_command(command);
}

inline std::string remove_command(std::string_view key, WallTime at) {
  KvCommand command;
  command.type = KvCommandType::kRemove;
  command.issued_at = at;
  command.key = key;
  return encode_kv_command(command);
}

// The engine's digest, checked three ways: the sums the engine keeps, the
// same copied into a capture, and a recomputation from the captured records.
inline ShardDigest digest_of(const StorageEngine& engine) {
  auto captured = engine.capture();
  REQUIRE(captured.is_ok());
  const ShardDigest kept = (*captured)->digest();
  CHECK(engine.digest() == kept);
  CHECK((*captured)->scan_digest() == kept);
  return kept;
}

// A random log of `count` commands, applied to `engine` as it is built (the
// expire commands list the keys that are due there), over `key_space` keys.
inline std::vector<std::string> build_random_log(StorageEngine& engine, Rng& rng,
                                                 std::size_t count, std::size_t key_space) {
  std::vector<std::string> log;
  for (std::size_t i = 0; i < count; ++i) {
    const WallTime now = kT0 + std::chrono::milliseconds(engine.last_applied_index().value());
    const std::string key = "key-" + std::to_string(rng.uniform(key_space));
    const std::uint64_t pick = rng.uniform(100);
    std::string command;
    if (pick < 60) {
      std::string value(rng.uniform(120), '\0');
      for (char& c : value) c = static_cast<char>(rng.uniform(256));
      std::optional<WallTime> expiry;
      // Some already expired when written, most expiring during the log.
      if (rng.chance(0.3)) {
        expiry = now + std::chrono::milliseconds(static_cast<std::int64_t>(rng.uniform(400)) - 50);
      }
      command = set_command(key, value, now, expiry);
    } else if (pick < 75) {
      command = remove_command(key, now);
    } else if (pick < 85) {
      KvCommand cas;
      cas.issued_at = now;
      cas.key = key;
      cas.value = "cas";
      cas.if_version = rng.uniform(4);  // often lost: still logged, changes nothing
      command = encode_kv_command(cas);
    } else if (pick < 95) {
      command = encode_kv_command(make_expire_command(now, engine.find_due_keys(now, 8)));
    } else {
      command = std::string();  // a no-op entry
    }
    apply_next(engine, command);
    log.push_back(std::move(command));
  }
  return log;
}

inline void apply_log(StorageEngine& engine, const std::vector<std::string>& log) {
  for (const std::string& command : log) apply_next(engine, command);
}

inline std::optional<WallTime> expiry_of(const ModelEntry& entry) {
  return entry.expiry_ms ? std::optional<WallTime>(ms_time(*entry.expiry_ms)) : std::nullopt;
}

// The digest of a dumped state, computed from shard_digest.hpp's definition
// without the engine's digest code.
inline ShardDigest digest_from_dump(const ModelState& state, LogIndex index) {
  ShardDigest d;
  d.index = index;
  d.version_floor = state.version_floor;
  for (const auto& [key, entry] : state.entries) {
    d.buckets[digest_bucket(key)] +=
        digest_record_hash(key, entry.value, entry.version, expiry_of(entry));
    ++d.keys;
    d.bytes += key.size() + entry.value.size();
  }
  return d;
}

// The dumped entries whose keys fall in `buckets` (or, with inside = false,
// outside them).
inline std::map<std::string, ModelEntry> entries_in(const ModelState& state,
                                                     const std::vector<std::uint32_t>& buckets,
                                                     bool inside = true) {
  std::map<std::string, ModelEntry> out;
  for (const auto& [key, entry] : state.entries) {
    const bool in = std::find(buckets.begin(), buckets.end(), digest_bucket(key)) != buckets.end();
    if (in == inside) out.emplace(key, entry);
  }
  return out;
}

// A key of bucket `bucket` (found by trying names in order).
inline std::string key_in_bucket(std::uint32_t bucket, std::string_view prefix = "b") {
  for (int i = 0;; ++i) {
    std::string key = std::string(prefix) + std::to_string(i);
    if (digest_bucket(key) == bucket) return key;
  }
}

// The keys of a snapshot stream in the order it lists them (the order of the
// engine's hash table).
inline std::vector<std::string> stream_key_order(StorageEngine& engine) {
  auto source = std::move(engine.open_snapshot()).value();
  std::string stream;
  for (auto chunk = source->next_chunk(1 << 16); !chunk->empty();
       chunk = source->next_chunk(1 << 16)) {
    stream += *chunk;
  }
  std::vector<std::string> keys;
  for (std::size_t pos = 0; pos < stream.size();) {
    const std::uint32_t length = storage::load_u32(stream.data() + pos);
    const std::string_view payload =
        std::string_view(stream).substr(pos + record::kHeaderBytes, length);
    pos += record::kHeaderBytes + length;
    if (static_cast<std::uint8_t>(payload[0]) != storage::kSnapshotKindEntries) continue;
    storage::ByteReader reader(payload.substr(5));
    while (!reader.done()) {
      std::uint64_t u64 = 0;
      std::uint8_t u8 = 0;
      std::string_view key;
      std::string_view value;
      REQUIRE((reader.read_u64(u64) && reader.read_u8(u8) && reader.read_u64(u64) &&
               reader.read_sized(key) && reader.read_sized(value)));
      keys.emplace_back(key);
    }
  }
  return keys;
}

// A bucket export built by hand from its layout (src/storage/snapshot.hpp),
// with correct framing and, unless told otherwise, correct trailer sums: the
// importer's checks of content, not of framing, are what a forged export
// tests.
struct ForgedEntry {
  std::string key;
  std::string value;
  std::uint64_t version = 1;
};

inline std::vector<std::string> forge_export(LogIndex index, std::uint64_t version_floor,
                                             const std::vector<std::uint32_t>& buckets,
                                             const std::vector<ForgedEntry>& entries,
                                             std::uint64_t sum_offset = 0) {
  using namespace storage;
  std::string stream;
  std::string payload;
  put_u8(payload, kBucketExportKindHeader);
  put_u16(payload, kBucketExportFormat);
  put_u64(payload, index.value());
  put_u64(payload, version_floor);
  put_u16(payload, static_cast<std::uint16_t>(buckets.size()));
  for (std::uint32_t b : buckets) put_u16(payload, static_cast<std::uint16_t>(b));
  record::encode(stream, payload);
  std::array<std::uint64_t, kDigestBuckets> sums{};
  if (!entries.empty()) {
    payload.clear();
    put_u8(payload, kBucketExportKindEntries);
    put_u32(payload, static_cast<std::uint32_t>(entries.size()));
    for (const ForgedEntry& e : entries) {
      put_u64(payload, e.version);
      put_u8(payload, 0);
      put_i64(payload, 0);
      put_sized(payload, e.key);
      put_sized(payload, e.value);
      sums[digest_bucket(e.key)] += digest_record_hash(e.key, e.value, e.version, std::nullopt);
    }
    record::encode(stream, payload);
  }
  payload.clear();
  put_u8(payload, kBucketExportKindTrailer);
  put_u64(payload, entries.size());
  put_u64(payload, entries.empty() ? 0 : 1);
  for (std::uint32_t b : buckets) put_u64(payload, sums[b] + sum_offset);
  record::encode(stream, payload);
  return {stream};
}

}  // namespace nodenomad::digest_test
