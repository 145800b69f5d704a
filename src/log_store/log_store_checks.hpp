// The argument checks of the LogStore contract, shared by MemoryLogStore and
// FileLogStore so that both refuse the same calls with the same codes and
// messages (the shared contract test relies on it). Every message names the
// offending index and the range that was allowed.
//
// These are pure functions of the values passed in; callers hold their own
// lock while they gather them.
#pragma once

#include <cstdint>
#include <span>

#include "nodenomad/log_store.hpp"

namespace nodenomad::log_store_checks {

// term_at(index) outside [snapshot_index, last]: kNotFound.
Status term_not_found(LogIndex index, LogIndex snapshot_index, LogIndex last);

// entries(lo, hi): kInvalidArgument when lo > hi; kNotFound when lo < first
// (compacted) or hi > last + 1.
Status check_entries_range(LogIndex lo, LogIndex hi, LogIndex first, LogIndex last);

// How many of the entries whose data sizes `data_bytes(i)` yields (i in
// [0, count)) fit in `max_bytes`: the longest prefix whose data bytes total
// at most max_bytes, but never fewer than one when count > 0.
template <typename DataBytes>
std::uint64_t count_within_bytes(std::uint64_t count, std::uint64_t max_bytes,
                                 DataBytes data_bytes) {
  if (count == 0) return 0;
  std::uint64_t total = data_bytes(0);
  std::uint64_t n = 1;
  while (n < count) {
    const std::uint64_t next = data_bytes(n);
    if (next > max_bytes || total > max_bytes - next) break;
    total += next;
    ++n;
  }
  return n;
}

// append(): the batch is contiguous and entries[0].index lies in
// [first, last + 1]. Precondition: !entries.empty().
Status check_append_indexes(std::span<const Entry> entries, LogIndex first, LogIndex last);
// append(): terms never decrease, from `prev_term` (the term at
// entries[0].index - 1, the snapshot's term at the snapshot index) through
// the batch.
Status check_append_terms(std::span<const Entry> entries, Term prev_term);

// truncate_suffix(from): from in [first, last + 1].
Status check_truncate(LogIndex from, LogIndex first, LogIndex last);

// compact(meta): meta.index in [first - 1, last].
Status check_compact_index(const SnapshotMeta& meta, LogIndex first, LogIndex last);
// compact(meta): meta.term is the term the log holds at meta.index.
Status check_compact_term(const SnapshotMeta& meta, Term term_at_index);

// install_snapshot(meta): the snapshot never moves backwards.
Status check_install(const SnapshotMeta& meta, const SnapshotMeta& current);

}  // namespace nodenomad::log_store_checks
