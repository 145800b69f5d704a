// LogState: the logical state of a FileLogStore (snapshot meta, hard state,
// and where each entry's record lives), built up one record at a time.
//
// The running store and the replay on open apply records through the same
// functions, so what replay rebuilds is by construction what the store held
// when it wrote those records. The running store validates arguments first
// (log_store_checks.hpp) and asserts that applying succeeds; replay turns a
// refusal into kCorruption naming the file and offset.
//
// Replay may start at a segment whose earlier segments were deleted by
// compaction. Its start record says the log then ended at `last_index`, but
// the entries after the snapshot live in the deleted segments: they are
// *absent*. A later compaction record (durable before the deletion happened)
// always covers them; open() refuses a log in which an absent entry is still
// readable after replay. Absent entries are a count, never allocated.
//
// Thread safety: none; the owner locks.
#pragma once

#include <cstdint>
#include <optional>

#include "common/chunked_deque.hpp"

#include "log_store/file_log_store_format.hpp"
#include "nodenomad/log_store.hpp"

namespace nodenomad::file_log_store_internal {

// Where an entry's record lives, with the entry's term (the index entry).
struct EntryLocation {
  Term term;
  std::uint64_t seq = 0;     // segment sequence number
  std::uint64_t offset = 0;  // offset of the record's header in the segment
  std::uint32_t framed_bytes = 0;

  std::uint64_t data_bytes() const {
    return framed_bytes - record::kHeaderBytes - file_log_store_format::kEntryPayloadFixedBytes;
  }
};
// The public header promises 32 bytes of memory per entry.
static_assert(sizeof(EntryLocation) <= 32);

class LogState {
 public:
  const SnapshotMeta& snapshot() const { return snapshot_; }
  const HardState& hard_state() const { return hard_state_; }
  LogIndex first_index() const { return snapshot_.index.next(); }
  LogIndex last_index() const { return snapshot_.index + absent_ + locations_.size(); }
  bool has_absent_entries() const { return absent_ > 0; }
  // Segment of the oldest entry still in the log; nullopt when it is empty.
  std::optional<std::uint64_t> oldest_entry_segment() const;

  // Term at `index` in [snapshot index, last index]; nullopt for an absent
  // entry. Precondition: in range.
  std::optional<Term> term_in_range(LogIndex index) const;
  // The same for a running store, which never has absent entries.
  Term known_term(LogIndex index) const {
    const std::optional<Term> term = term_in_range(index);
    NN_ASSERT(term.has_value(), "term of absent entry ", index);
    return *term;
  }
  // Precondition: index in [first, last] and not absent.
  const EntryLocation& location(LogIndex index) const;

  // Each applies one record. A non-OK status (kCorruption) means the record
  // cannot follow the state; the state is then unchanged.
  // `first_segment`: replay starts here, so the start record initializes the
  // state instead of being checked against it.
  Status apply_segment_start(const file_log_store_format::SegmentStart& start, bool first_segment);
  Status apply_entry(LogIndex index, const EntryLocation& location);
  void apply_hard_state(const HardState& state) { hard_state_ = state; }
  Status apply_truncate(LogIndex from);
  Status apply_compact(const SnapshotMeta& meta);
  Status apply_install_snapshot(const SnapshotMeta& meta);

 private:
  void truncate_from(LogIndex from);

  SnapshotMeta snapshot_;
  HardState hard_state_;
  std::uint64_t absent_ = 0;             // entries after the snapshot whose records are gone
  ChunkedDeque<EntryLocation> locations_;  // the entries after the absent ones
};

}  // namespace nodenomad::file_log_store_internal
