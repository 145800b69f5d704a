// The FileLogStore's files and the payloads of its records.
//
// A store is one directory of segment files:
//
//   <dir>/log-00000000000000000001.seg
//   <dir>/log-00000000000000000002.seg      sequence numbers count up from 1,
//   ...                                      are never reused, and have no gaps
//                                            except below a compaction
//
// A segment is a sequence of records in the shared framing of
// common/record_format.hpp (a checksummed header, then the payload). Its first record
// is always a kSegmentStart that restates the whole logical state as it was at
// that point of the record stream, so that every earlier segment can be
// deleted once a snapshot covers their entries. Replaying the records of the
// surviving segments in order rebuilds the log: each record type below is one
// step of the state, applied identically at run time and on replay
// (file_log_store_state.hpp).
//
// Payloads (all integers little endian; byte 0 is the RecordType):
//
//   kSegmentStart = 1
//   +----+-----------+-------------+-----------+----------------+------------+---------------+
//   | 1  | magic u32 | version u16 | seq u64   | last_index u64 | hard state | snapshot meta |
//   +----+-----------+-------------+-----------+----------------+------------+---------------+
//     magic = "NNLS" (0x534c4e4e), version = kFormatVersion, seq = the file's number,
//     last_index = the log's last index at this point; entries (snapshot index, last_index]
//     live in earlier segments.
//
//   kEntry = 2           (an entry at or below the current last index first truncates
//                         the log from that index: a follower's conflicting suffix)
//   +----+-----------+----------+---------------+--------------------------------+
//   | 2  | index u64 | term u64 | entry type u8 | data (the rest of the payload) |
//   +----+-----------+----------+---------------+--------------------------------+
//
//   kHardState = 3       | 3 | hard state |
//   kTruncate = 4        | 4 | from u64 |           drops entries from `from` on
//   kCompact = 5         | 5 | snapshot meta |      drops entries up to meta.index
//   kInstallSnapshot = 6 | 6 | snapshot meta |      drops every entry
//
//   hard state    = term u64 | vote string | commit u64
//   snapshot meta = index u64 | term u64 | conf state
//   conf state    = voters list | learners list | voters_outgoing list |
//                   learners_next list | auto_leave u8
//   list          = count u32 | count strings
//   string        = length u32 | bytes
//
// A decoder never trusts a count or length: each is checked against the bytes
// left in the payload before anything is allocated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/record_format.hpp"
#include "nodenomad/log_store.hpp"

namespace nodenomad::file_log_store_format {

inline constexpr std::uint32_t kMagic = 0x534c4e4e;  // "NNLS" read little endian
inline constexpr std::uint16_t kFormatVersion = 1;

enum class RecordType : std::uint8_t {
  kSegmentStart = 1,
  kEntry = 2,
  kHardState = 3,
  kTruncate = 4,
  kCompact = 5,
  kInstallSnapshot = 6,
};

// Bytes of an entry payload before its data: type, index, term, entry type.
inline constexpr std::size_t kEntryPayloadFixedBytes = 1 + 8 + 8 + 1;
// The largest entry data a record can carry.
inline constexpr std::size_t kMaxEntryDataBytes =
    record::kMaxRecordPayloadBytes - kEntryPayloadFixedBytes;

struct SegmentStart {
  std::uint64_t seq = 0;
  std::uint16_t version = kFormatVersion;
  LogIndex last_index;
  HardState hard_state;
  SnapshotMeta snapshot;
};

// An entry as decoded: `data` points into the payload it came from.
struct EntryView {
  LogIndex index;
  Term term;
  EntryType type = EntryType::kNormal;
  std::string_view data;
};

struct TruncateRecord {
  LogIndex from;
};
struct CompactRecord {
  SnapshotMeta snapshot;
};
struct InstallSnapshotRecord {
  SnapshotMeta snapshot;
};

using Record = std::variant<SegmentStart, EntryView, HardState, TruncateRecord, CompactRecord,
                            InstallSnapshotRecord>;

// Each appends one payload (unframed) to `out`.
void encode_segment_start(std::string& out, const SegmentStart& start);
void encode_entry(std::string& out, const Entry& entry);
void encode_hard_state(std::string& out, const HardState& state);
void encode_truncate(std::string& out, LogIndex from);
void encode_compact(std::string& out, const SnapshotMeta& meta);
void encode_install_snapshot(std::string& out, const SnapshotMeta& meta);

// Decodes one payload. kCorruption says what is wrong (the caller adds the
// file and offset); kNotSupported for a segment of another format version.
Result<Record> decode(std::string_view payload);

// Checks the framing of one whole record read back from a file (header and
// checksum) and returns its payload; kCorruption otherwise.
Result<std::string_view> unframe(std::string_view framed);

std::string segment_file_name(std::uint64_t seq);
// The sequence number of a segment file name; nullopt for any other name.
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name);

}  // namespace nodenomad::file_log_store_format
