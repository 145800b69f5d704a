#include "checker/event_list.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

#include "nodenomad/assert.hpp"

namespace nodenomad::testing::detail {

namespace {

struct Sortable {
  LogicalTime time;
  bool is_completion;  // false sorts first: invokes before completions
  std::uint32_t op;
};

void sort_events(std::vector<Sortable>& events) {
  std::sort(events.begin(), events.end(), [](const Sortable& a, const Sortable& b) {
    return std::tie(a.time, a.is_completion, a.op) < std::tie(b.time, b.is_completion, b.op);
  });
}

}  // namespace

EventList::EventList(const KeyPartition& part) {
  const std::size_t op_count = part.ops.size();
  // Two events per operation plus the heads must fit the 32-bit links.
  NN_ASSERT(op_count < std::numeric_limits<std::uint32_t>::max() / 2 - 2,
            "too many operations on one key: ", op_count);
  std::vector<Sortable> ok_events;
  std::vector<Sortable> maybe_events;
  for (std::uint32_t i = 0; i < op_count; ++i) {
    if (!part.ops[i].outcome_known) {
      maybe_events.push_back(Sortable{part.invoke_times[i], false, i});
      continue;
    }
    NN_ASSERT(part.complete_times[i] >= part.invoke_times[i], "operation #", part.ops[i].id,
              " completes before its invoke");
    ok_events.push_back(Sortable{part.invoke_times[i], false, i});
    ok_events.push_back(Sortable{part.complete_times[i], true, i});
  }
  sort_events(ok_events);
  sort_events(maybe_events);
  maybe_count_ = maybe_events.size();

  events_.assign(2, Event{});  // the two heads
  std::vector<std::uint32_t> invoke_entry(op_count, kNil);
  for (const std::vector<Sortable>* list : {&ok_events, &maybe_events}) {
    for (const Sortable& event : *list) {
      const auto entry = static_cast<std::uint32_t>(events_.size());
      events_.push_back(Event{event.op, !event.is_completion, event.time, kNil});
      if (event.is_completion) {
        events_[invoke_entry[event.op]].completion = entry;
      } else {
        invoke_entry[event.op] = entry;
      }
    }
  }
  next_.assign(events_.size(), kNil);
  prev_.assign(events_.size(), kNil);
  const auto maybe_first = static_cast<std::uint32_t>(2 + ok_events.size());
  link_list(kOkHead, 2, maybe_first);
  link_list(kMaybeHead, maybe_first, static_cast<std::uint32_t>(events_.size()));
}

void EventList::link_list(std::uint32_t head, std::uint32_t first, std::uint32_t end) {
  std::uint32_t previous = head;
  for (std::uint32_t entry = first; entry < end; ++entry) {
    next_[previous] = entry;
    prev_[entry] = previous;
    previous = entry;
  }
  next_[previous] = kNil;
}

void EventList::unlink(std::uint32_t entry) {
  const std::uint32_t before = prev_[entry];
  const std::uint32_t after = next_[entry];
  next_[before] = after;
  if (after != kNil) prev_[after] = before;
}

void EventList::relink(std::uint32_t entry) {
  const std::uint32_t before = prev_[entry];
  const std::uint32_t after = next_[entry];
  next_[before] = entry;
  if (after != kNil) prev_[after] = entry;
}

void EventList::lift(std::uint32_t invoke_entry) {
  NN_ASSERT(events_[invoke_entry].is_invoke, "only an invoke is placed");
  unlink(invoke_entry);
  if (events_[invoke_entry].completion != kNil) unlink(events_[invoke_entry].completion);
}

void EventList::unlift(std::uint32_t invoke_entry) {
  NN_ASSERT(events_[invoke_entry].is_invoke, "only an invoke is undone");
  if (events_[invoke_entry].completion != kNil) relink(events_[invoke_entry].completion);
  relink(invoke_entry);
}

}  // namespace nodenomad::testing::detail
