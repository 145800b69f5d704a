// The StorageEngine's snapshot, on disk and on the wire.
//
// One format serves three uses: the snapshot file that lets the WAL (or the
// Raft log) be compacted, the byte stream of StateMachine::open_snapshot()
// that Raft sends to a lagging follower and migration sends to a new replica,
// and the input of begin_restore(). The file is exactly the stream.
//
// File: <dir>/snapshot-<applied index, 20 digits>.snap, written as
// <name>.tmp, synced, renamed, and the directory synced; a leftover .tmp is
// a snapshot that never finished and is removed on open.
//
// A sequence of records framed by src/common/record_format.hpp; the first
// payload byte is the kind:
//
//   kind 1, header (first record):
//     +---------+------------+-------------------+-------------------+---------------+
//     | kind u8 | format u16 | applied_index u64 | version_floor u64 | key_count u64 |
//     | = 1     | = 1        |                   |                   |               |
//     +---------+------------+-------------------+-------------------+---------------+
//
//   kind 2, entries (as many as needed; each packs keys up to
//   StorageOptions::snapshot_record_bytes, or one key if it alone is larger):
//     +---------+-----------+-------------------------------------------+
//     | kind u8 | count u32 | count x entry                             |
//     | = 2     |           |                                           |
//     +---------+-----------+-------------------------------------------+
//     entry:
//     +-------------+----------+---------------+-------------+---------+---------------+-------+
//     | version u64 | flags u8 | expiry_ms i64 | key_len u32 | key     | value_len u32 | value |
//     |  >= 1       | bit 0:   | (0 if none)   |  >= 1       |         |               |       |
//     |             | expiry   |               |             |         |               |       |
//     +-------------+----------+---------------+-------------+---------+---------------+-------+
//
//   kind 3, trailer (last record; nothing may follow):
//     +---------+---------------+-------------------+
//     | kind u8 | key_count u64 | entry_records u64 |
//     | = 3     |               |                   |
//     +---------+---------------+-------------------+
//
// A snapshot is valid only with its trailer and when both key counts match
// the entries read: a snapshot cut short is never mistaken for a small one.
// Keys appear once each, in no particular order.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "nodenomad/types.hpp"

namespace nodenomad::storage {

inline constexpr std::uint8_t kSnapshotKindHeader = 1;
inline constexpr std::uint8_t kSnapshotKindEntries = 2;
inline constexpr std::uint8_t kSnapshotKindTrailer = 3;
inline constexpr std::uint16_t kSnapshotFormat = 1;
inline constexpr std::uint8_t kSnapshotEntryHasExpiry = 1;
// version + flags + expiry + key_len + value_len, before the key and value.
inline constexpr std::size_t kSnapshotEntryFixedBytes = 8 + 1 + 8 + 4 + 4;
inline constexpr std::string_view kSnapshotSuffix = ".snap";
inline constexpr std::string_view kTempSuffix = ".tmp";

inline std::string snapshot_file_name(LogIndex index) {
  return fmt::format("snapshot-{:020}.snap", index.value());
}

// The index in a snapshot file name, or nullopt if `name` is not one.
inline std::optional<LogIndex> parse_snapshot_file_name(std::string_view name) {
  constexpr std::string_view kPrefix = "snapshot-";
  if (name.size() != kPrefix.size() + 20 + kSnapshotSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSnapshotSuffix)) {
    return std::nullopt;
  }
  const std::string_view digits = name.substr(kPrefix.size(), 20);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return LogIndex(value);
}

}  // namespace nodenomad::storage
