// EventList: one key's events in time order, as two doubly linked lists whose
// entries can be unlinked and relinked in LIFO order ("dancing links"), which
// is what the search's place/undo needs.
//
//   ok list     (head kOkHead):    invokes and completions of ok operations
//   maybe list  (head kMaybeHead): invokes of maybe operations (they never
//                                  complete)
//
// Both are sorted by (time, invokes before completions). Logical times are
// unique, so the tie rule only matters for hand-made input; it counts equal
// times as overlap, the reading that claims no order the history does not
// show. Keeping maybe operations in their own list lets the search walk the
// few ok candidates without stepping over every unknown write still open.
//
// Thread safety: none; one list per search.
#pragma once

#include <cstdint>
#include <vector>

#include "checker/partition.hpp"

namespace nodenomad::testing::detail {

class EventList {
 public:
  static constexpr std::uint32_t kOkHead = 0;
  static constexpr std::uint32_t kMaybeHead = 1;
  static constexpr std::uint32_t kNil = ~std::uint32_t{0};

  explicit EventList(const KeyPartition& part);

  std::uint32_t next(std::uint32_t entry) const { return next_[entry]; }
  bool is_invoke(std::uint32_t entry) const { return events_[entry].is_invoke; }
  std::size_t op(std::uint32_t entry) const { return events_[entry].op; }
  LogicalTime time(std::uint32_t entry) const { return events_[entry].time; }
  std::size_t maybe_count() const { return maybe_count_; }

  // Unlinks an invoke and its completion (if it has one).
  void lift(std::uint32_t invoke_entry);
  // Relinks them; must undo the most recent lift() still in effect.
  void unlift(std::uint32_t invoke_entry);

 private:
  struct Event {
    std::uint32_t op = 0;
    bool is_invoke = false;
    LogicalTime time = 0;
    std::uint32_t completion = kNil;  // for an invoke: its completion entry
  };

  // Links the entries [first, end) into one list after `head`.
  void link_list(std::uint32_t head, std::uint32_t first, std::uint32_t end);
  void unlink(std::uint32_t entry);
  void relink(std::uint32_t entry);

  std::vector<Event> events_;
  std::vector<std::uint32_t> next_;
  std::vector<std::uint32_t> prev_;
  std::size_t maybe_count_ = 0;
};

}  // namespace nodenomad::testing::detail
