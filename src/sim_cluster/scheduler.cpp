#include "sim_cluster/scheduler.hpp"

#include <xxhash.h>

#include <algorithm>

#include "nodenomad/assert.hpp"

namespace nodenomad::sim_cluster {

// std::*_heap keep the largest element first; "larger" here is "earlier".
bool Scheduler::later(const Entry& a, const Entry& b) {
  if (a.time != b.time) return a.time > b.time;
  return a.sequence > b.sequence;
}

bool Scheduler::at(SimTime time, std::uint32_t owner, Task task) {
  NN_ASSERT(time >= now_, "a task scheduled in the past");
  if (heap_.size() >= kMaxPendingTasks) return false;
  heap_.push_back(Entry{time, next_sequence_++, owner, std::move(task)});
  std::push_heap(heap_.begin(), heap_.end(), later);
  return true;
}

SimTime Scheduler::next_time() const {
  NN_ASSERT(!heap_.empty(), "next_time() of an empty scheduler");
  return heap_.front().time;
}

bool Scheduler::run_next() {
  if (heap_.empty()) return false;
  std::pop_heap(heap_.begin(), heap_.end(), later);
  Entry entry = std::move(heap_.back());
  heap_.pop_back();
  if (entry.time > now_) {
    clock_.advance(std::chrono::microseconds(entry.time - now_));
    now_ = entry.time;
  }
  ++steps_;
  const std::uint64_t fields[] = {entry.time, entry.sequence, entry.owner};
  order_hash_ = XXH3_64bits_withSeed(fields, sizeof(fields), order_hash_);
  const std::uint32_t previous = current_owner_;
  current_owner_ = entry.owner;
  entry.task();
  current_owner_ = previous;
  return true;
}

void Scheduler::drop_owner(std::uint32_t owner) {
  std::vector<Entry> dropped;
  auto keep = std::partition(heap_.begin(), heap_.end(),
                             [owner](const Entry& e) { return e.owner != owner; });
  dropped.assign(std::make_move_iterator(keep), std::make_move_iterator(heap_.end()));
  heap_.erase(keep, heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), later);
  // Destroyed here, outside the heap: a closure's destructor may call back
  // (an unrun client call answers "not applied") and schedule more.
  dropped.clear();
}

void Scheduler::as_owner(std::uint32_t owner, const std::function<void()>& fn) {
  const std::uint32_t previous = current_owner_;
  current_owner_ = owner;
  fn();
  current_owner_ = previous;
}

void SimLoop::post(Task task) {
  if (!alive_) {
    ++refused_;
    return;
  }
  const SimTime delay = delay_us_ ? delay_us_() : 0;
  if (!scheduler_.at(scheduler_.now() + delay, owner_, std::move(task))) ++refused_;
}

void SimLoop::post_after(std::chrono::milliseconds delay, Task task) {
  if (!alive_) {
    ++refused_;
    return;
  }
  const SimTime extra = delay_us_ ? delay_us_() : 0;
  const auto ms = static_cast<double>(std::max<std::int64_t>(delay.count(), 0));
  const auto us = static_cast<SimTime>(ms * 1000.0 * (1.0 + skew_));
  if (!scheduler_.at(scheduler_.now() + us + extra, owner_, std::move(task))) ++refused_;
}

}  // namespace nodenomad::sim_cluster
