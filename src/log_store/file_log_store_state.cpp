#include "log_store/file_log_store_state.hpp"

#include <fmt/format.h>

namespace nodenomad::file_log_store_internal {

namespace {

std::string describe(const HardState& s) {
  return fmt::format("(term {}, vote '{}', commit {})", s.term.value(), s.vote.str(),
                     s.commit.value());
}

}  // namespace

std::optional<std::uint64_t> LogState::oldest_entry_segment() const {
  if (absent_ > 0 || locations_.empty()) return std::nullopt;
  return locations_.front().seq;
}

std::optional<Term> LogState::term_in_range(LogIndex index) const {
  NN_ASSERT(index >= snapshot_.index && index <= last_index(), "index ", index, " outside [",
            snapshot_.index, ", ", last_index(), "]");
  if (index == snapshot_.index) return snapshot_.term;
  const std::uint64_t pos = index - first_index();
  if (pos < absent_) return std::nullopt;
  return locations_[static_cast<std::size_t>(pos - absent_)].term;
}

const EntryLocation& LogState::location(LogIndex index) const {
  NN_ASSERT(index >= first_index() && index <= last_index(), "index ", index, " outside [",
            first_index(), ", ", last_index(), "]");
  const std::uint64_t pos = index - first_index();
  NN_ASSERT(pos >= absent_, "location of absent entry ", index);
  return locations_[static_cast<std::size_t>(pos - absent_)];
}

Status LogState::apply_segment_start(const file_log_store_format::SegmentStart& start,
                                     bool first_segment) {
  if (start.last_index < start.snapshot.index) {
    return Status::corruption(fmt::format("segment start has last index {} below snapshot index {}",
                                          start.last_index.value(), start.snapshot.index.value()));
  }
  if (first_segment) {
    snapshot_ = start.snapshot;
    hard_state_ = start.hard_state;
    absent_ = start.last_index - start.snapshot.index;
    locations_.clear();
    return Status::ok();
  }
  if (start.snapshot != snapshot_ || start.hard_state != hard_state_ ||
      start.last_index != last_index()) {
    return Status::corruption(fmt::format(
        "segment start restates snapshot index {}, hard state {}, last index {}, but the "
        "records before it give snapshot index {}, hard state {}, last index {}",
        start.snapshot.index.value(), describe(start.hard_state), start.last_index.value(),
        snapshot_.index.value(), describe(hard_state_), last_index().value()));
  }
  return Status::ok();
}

Status LogState::apply_entry(LogIndex index, const EntryLocation& location) {
  if (index <= snapshot_.index || index > last_index().next()) {
    return Status::corruption(fmt::format(
        "entry record at index {} does not follow the log (snapshot index {}, last index {})",
        index.value(), snapshot_.index.value(), last_index().value()));
  }
  const std::optional<Term> prev = term_in_range(index.prev());
  if (prev && location.term < *prev) {
    return Status::corruption(
        fmt::format("entry record at index {} has term {}, below term {} "
                    "of the entry before it",
                    index.value(), location.term.value(), prev->value()));
  }
  truncate_from(index);
  locations_.push_back(location);
  return Status::ok();
}

Status LogState::apply_truncate(LogIndex from) {
  if (from < first_index() || from > last_index().next()) {
    return Status::corruption(fmt::format("truncate record from index {} outside [{}, {}]",
                                          from.value(), first_index().value(),
                                          last_index().next().value()));
  }
  truncate_from(from);
  return Status::ok();
}

Status LogState::apply_compact(const SnapshotMeta& meta) {
  if (meta.index < snapshot_.index || meta.index > last_index()) {
    return Status::corruption(fmt::format("compact record to index {} outside [{}, {}]",
                                          meta.index.value(), snapshot_.index.value(),
                                          last_index().value()));
  }
  const std::optional<Term> term = term_in_range(meta.index);
  if (term && *term != meta.term) {
    return Status::corruption(fmt::format("compact record to index {} says term {}, the log has {}",
                                          meta.index.value(), meta.term.value(), term->value()));
  }
  std::uint64_t drop = meta.index - snapshot_.index;
  const std::uint64_t absent_dropped = std::min(drop, absent_);
  absent_ -= absent_dropped;
  drop -= absent_dropped;
  locations_.pop_front(static_cast<std::size_t>(drop));
  snapshot_ = meta;
  return Status::ok();
}

Status LogState::apply_install_snapshot(const SnapshotMeta& meta) {
  if (meta.index < snapshot_.index) {
    return Status::corruption(fmt::format("install snapshot record at index {} below index {}",
                                          meta.index.value(), snapshot_.index.value()));
  }
  snapshot_ = meta;
  absent_ = 0;
  locations_.clear();
  return Status::ok();
}

void LogState::truncate_from(LogIndex from) {
  const std::uint64_t keep = from - first_index();
  if (keep <= absent_) {
    absent_ = keep;
    locations_.clear();
  } else {
    locations_.truncate(std::min<std::size_t>(locations_.size(), keep - absent_));
  }
}

}  // namespace nodenomad::file_log_store_internal
