#include "log_store/log_store_checks.hpp"

#include <fmt/format.h>

namespace nodenomad::log_store_checks {

namespace {

// "[first, last]", or "empty (next index N)" when the log holds no entry.
std::string entry_range(LogIndex first, LogIndex last) {
  if (last < first) return fmt::format("no entries (the next index is {})", first.value());
  return fmt::format("entries [{}, {}]", first.value(), last.value());
}

}  // namespace

Status term_not_found(LogIndex index, LogIndex snapshot_index, LogIndex last) {
  return Status::not_found(
      fmt::format("term_at({}): index outside the readable range [{}, {}] (snapshot index {})",
                  index.value(), snapshot_index.value(), last.value(), snapshot_index.value()));
}

Status check_entries_range(LogIndex lo, LogIndex hi, LogIndex first, LogIndex last) {
  if (lo > hi) {
    return Status::invalid_argument(
        fmt::format("entries [{}, {}): lo is above hi", lo.value(), hi.value()));
  }
  if (lo < first) {
    return Status::not_found(
        fmt::format("entries [{}, {}): index {} is compacted; the log holds {}", lo.value(),
                    hi.value(), lo.value(), entry_range(first, last)));
  }
  if (hi > last.next()) {
    return Status::not_found(
        fmt::format("entries [{}, {}): past the last index {}; the log holds {}", lo.value(),
                    hi.value(), last.value(), entry_range(first, last)));
  }
  return Status::ok();
}

Status check_append_indexes(std::span<const Entry> entries, LogIndex first, LogIndex last) {
  const LogIndex start = entries.front().index;
  if (start < first || start > last.next()) {
    return Status::invalid_argument(
        fmt::format("append at index {}: the first entry must lie in [{}, {}] (the log holds {})",
                    start.value(), first.value(), last.next().value(), entry_range(first, last)));
  }
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != start + i) {
      return Status::invalid_argument(fmt::format(
          "append at index {}: entry {} of the batch has index {}, expected {} (not contiguous)",
          start.value(), i, entries[i].index.value(), (start + i).value()));
    }
  }
  return Status::ok();
}

Status check_append_terms(std::span<const Entry> entries, Term prev_term) {
  Term previous = prev_term;
  for (const Entry& e : entries) {
    if (e.term < previous) {
      return Status::invalid_argument(fmt::format(
          "append: entry {} has term {}, below the term {} of the entry before it (terms in a "
          "log never decrease)",
          e.index.value(), e.term.value(), previous.value()));
    }
    previous = e.term;
  }
  return Status::ok();
}

Status check_truncate(LogIndex from, LogIndex first, LogIndex last) {
  if (from < first || from > last.next()) {
    return Status::invalid_argument(
        fmt::format("truncate_suffix({}): from must lie in [{}, {}] (the log holds {})",
                    from.value(), first.value(), last.next().value(), entry_range(first, last)));
  }
  return Status::ok();
}

Status check_compact_index(const SnapshotMeta& meta, LogIndex first, LogIndex last) {
  const LogIndex snapshot_index = first.prev();
  if (meta.index < snapshot_index || meta.index > last) {
    return Status::invalid_argument(
        fmt::format("compact to index {}: the index must lie in [{}, {}] (snapshot index {}, {})",
                    meta.index.value(), snapshot_index.value(), last.value(),
                    snapshot_index.value(), entry_range(first, last)));
  }
  return Status::ok();
}

Status check_compact_term(const SnapshotMeta& meta, Term term_at_index) {
  if (meta.term != term_at_index) {
    return Status::invalid_argument(fmt::format(
        "compact to index {}: the snapshot says term {} but the log holds term {} there",
        meta.index.value(), meta.term.value(), term_at_index.value()));
  }
  return Status::ok();
}

Status check_install(const SnapshotMeta& meta, const SnapshotMeta& current) {
  if (meta.index < current.index) {
    return Status::invalid_argument(
        fmt::format("install_snapshot at index {}: older than the current snapshot at index {}",
                    meta.index.value(), current.index.value()));
  }
  return Status::ok();
}

}  // namespace nodenomad::log_store_checks
