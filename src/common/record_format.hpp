// The framing shared by every append-only file NodeNomad writes: the storage
// engine's WAL, its snapshots and the FileLogStore's segments.
//
// A file is a sequence of records, each:
//
//   offset 0              4                  8                          16
//          +--------------+------------------+--------------------------+-----------+
//          | length (u32) | header_sum (u32) | payload_sum (u64)        | payload   |
//          +--------------+------------------+--------------------------+-----------+
//   all integers little endian;
//   header_sum  = low 32 bits of XXH3_64bits_withSeed(length bytes, 4, kRecordChecksumSeed)
//   payload_sum = XXH3_64bits_withSeed(payload, length, kRecordChecksumSeed ^ length)
//
// The header has its own checksum so that a flipped bit in the length is
// caught before the length is trusted: without it, a corrupted length that
// points past the end of the file would look like a torn tail and every
// record after it would be cut away. Seeding the payload checksum with the
// length ties the two together, and an all-zero region never reads as a
// valid record. The payload's meaning (its first byte is usually a record
// type) belongs to the file's owner, whose own *_format.hpp draws it.
//
// A length above kMaxRecordPayloadBytes is corruption, never an allocation:
// no length read from disk decides how much memory is taken beyond that bound.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nodenomad::record {

inline constexpr std::size_t kHeaderBytes = 16;
inline constexpr std::uint64_t kRecordChecksumSeed = 0x4e4f44454e4f4d41ULL;  // "NODENOMA"
inline constexpr std::uint32_t kMaxRecordPayloadBytes = 64u << 20;  // 64 MiB

std::uint64_t checksum(std::string_view payload);
std::uint32_t header_checksum(std::uint32_t length);

// Appends the framed record to `out` (callers batch many records in one
// buffer and write it with one append).
void encode(std::string& out, std::string_view payload);

inline std::size_t framed_size(std::size_t payload_bytes) { return kHeaderBytes + payload_bytes; }

}  // namespace nodenomad::record
