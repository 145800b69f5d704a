// The standalone StorageEngine's write-ahead log, on disk.
//
// The WAL is a series of segment files in the WAL directory, each named by
// the log index of its first command:
//
//   wal-00000000000000000001.log   commands 1 .. 4711
//   wal-00000000000000004712.log   commands 4712 .. (the open segment)
//
// A segment is a sequence of records framed by src/common/record_format.hpp
// (a checksummed header and the payload). The first byte of a payload is its
// kind:
//
//   kind 1, segment header (the first record of every segment):
//     +----------+--------------+----------------------+
//     | kind u8  | format u16   | first_index u64      |
//     | = 1      | = 1          | = the name's index   |
//     +----------+--------------+----------------------+
//
//   kind 2, command (one per logged write, indexes consecutive):
//     +----------+--------------+-----------------------------------------+
//     | kind u8  | index u64    | KvCommand bytes (nodenomad/storage/     |
//     | = 2      |              | command.hpp)                            |
//     +----------+--------------+-----------------------------------------+
//
// Rules that recovery checks: segment names are consecutive in the sense
// that segment k+1 starts right after segment k's last command; inside a
// segment indexes go up by one; only the last segment may end in a torn tail
// (rotation syncs a segment before the next one is created). A new segment
// is made durable (file synced, directory synced) before any command in it
// is acknowledged.
//
// The index is the same counter as StateMachine::last_applied_index(): in
// standalone mode the WAL is the engine's log, and a snapshot at index N
// makes every segment that ends at or before N obsolete.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"
#include "storage/byte_codec.hpp"

namespace nodenomad::storage {

inline constexpr std::uint8_t kWalKindSegmentHeader = 1;
inline constexpr std::uint8_t kWalKindCommand = 2;
inline constexpr std::uint16_t kWalFormat = 1;
// kind + index, in front of the command bytes of a kind-2 payload.
inline constexpr std::size_t kWalCommandPrefixBytes = 1 + 8;

inline std::string wal_segment_name(LogIndex first_index) {
  return fmt::format("wal-{:020}.log", first_index.value());
}

// The first index of a segment file name, or nullopt if `name` is not one.
inline std::optional<LogIndex> parse_wal_segment_name(std::string_view name) {
  constexpr std::string_view kPrefix = "wal-";
  constexpr std::string_view kSuffix = ".log";
  if (name.size() != kPrefix.size() + 20 + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return std::nullopt;
  }
  const std::string_view digits = name.substr(kPrefix.size(), 20);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return LogIndex(value);
}

inline std::string encode_wal_segment_header(LogIndex first_index) {
  std::string payload;
  put_u8(payload, kWalKindSegmentHeader);
  put_u16(payload, kWalFormat);
  put_u64(payload, first_index.value());
  return payload;
}

// Starts a kind-2 payload whose index is filled in later, when the write's
// place in the log is known (set_wal_command_index).
inline void begin_wal_command_payload(std::string& payload) {
  put_u8(payload, kWalKindCommand);
  put_u64(payload, 0);
}

inline void set_wal_command_index(std::string& payload, LogIndex index) {
  store_u64_at(payload, 1, index.value());
}

inline std::string_view wal_command_bytes(std::string_view payload) {
  return payload.substr(kWalCommandPrefixBytes);
}

struct WalPayload {
  std::uint8_t kind = 0;
  LogIndex index;              // kind 1: first_index; kind 2: the command's index
  std::string_view command;    // kind 2
};

inline Result<WalPayload> decode_wal_payload(std::string_view payload) {
  ByteReader reader(payload);
  WalPayload out;
  std::uint64_t index = 0;
  if (!reader.read_u8(out.kind)) return Status::corruption("empty WAL record");
  if (out.kind == kWalKindSegmentHeader) {
    std::uint16_t format = 0;
    if (!reader.read_u16(format) || !reader.read_u64(index) || !reader.done()) {
      return Status::corruption("malformed WAL segment header");
    }
    if (format != kWalFormat) {
      return Status::corruption(fmt::format("unknown WAL format {}", format));
    }
  } else if (out.kind == kWalKindCommand) {
    if (!reader.read_u64(index)) return Status::corruption("truncated WAL command record");
    out.command = payload.substr(reader.position());
  } else {
    return Status::corruption(fmt::format("unknown WAL record kind {}", out.kind));
  }
  out.index = LogIndex(index);
  return out;
}

}  // namespace nodenomad::storage
