// The whole-node simulation's scheduler: one queue of tasks ordered by
// (simulated time, scheduling sequence), each tagged with the node that owns
// it, and the EventLoop adapters the Nodes run on.
//
// A Node given a SimLoop as NodeOptions::loop (and another as
// background_loop) posts every piece of its work here instead of to a
// thread, so one thread runs several Nodes and a seed replays exactly (the
// FoundationDB way). While a task of node i runs, current_owner() is i and
// that node's loop answers in_loop() true: Node::stop() and group_status()
// then act inline instead of waiting for a loop that never runs on its own.
//
// Crashing a node drops every task it owns (drop_owner), and its loops are
// killed so that what it posts while being torn down is dropped too.
//
// Bounded: at most kMaxPendingTasks wait at once; at() refuses beyond it
// (the network counts the message as dropped; anything else is a storm).
//
// Thread safety: none; one simulation thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/event_loop.hpp"

namespace nodenomad::sim_cluster {

using SimTime = std::uint64_t;  // microseconds since the start of the run
inline constexpr std::uint32_t kNoOwner = 0xffffffffu;

class Scheduler {
 public:
  using Task = std::function<void()>;
  static constexpr std::size_t kMaxPendingTasks = std::size_t{1} << 20;

  // `clock` is moved to each task's time before it runs; time 0 is the
  // clock's reading now.
  explicit Scheduler(ManualClock& clock) : clock_(clock) {}

  SimTime now() const { return now_; }
  // Schedules `task` at `time` (>= now()) for `owner`; false when full.
  bool at(SimTime time, std::uint32_t owner, Task task);
  // Runs the earliest task; false when none is left.
  bool run_next();
  bool empty() const { return heap_.empty(); }
  std::size_t pending() const { return heap_.size(); }
  SimTime next_time() const;
  std::uint64_t steps() const { return steps_; }
  // A hash of the order of every task run: (time, owner, sequence).
  std::uint64_t order_hash() const { return order_hash_; }

  // Drops (destroys unrun) every task `owner` has waiting.
  void drop_owner(std::uint32_t owner);

  std::uint32_t current_owner() const { return current_owner_; }
  // Runs `fn` as if it were a task of `owner` (crash, restart, inspection).
  void as_owner(std::uint32_t owner, const std::function<void()>& fn);

 private:
  struct Entry {
    SimTime time = 0;
    std::uint64_t sequence = 0;
    std::uint32_t owner = kNoOwner;
    Task task;
  };
  static bool later(const Entry& a, const Entry& b);

  ManualClock& clock_;
  std::vector<Entry> heap_;
  SimTime now_ = 0;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t steps_ = 0;
  std::uint64_t order_hash_ = 0x636c7573746572ULL;
  std::uint32_t current_owner_ = kNoOwner;
};

// A node's EventLoop (or its background loop) on the scheduler. `delay_us`
// gives the extra delay of every post (0 for the node's loop; a drawn disk
// latency for the background loop, whose tasks are fsyncs and digests).
class SimLoop final : public EventLoop {
 public:
  SimLoop(Scheduler& scheduler, std::uint32_t owner, std::function<SimTime()> delay_us = nullptr)
      : scheduler_(scheduler), owner_(owner), delay_us_(std::move(delay_us)) {}

  void post(Task task) override;
  void post_after(std::chrono::milliseconds delay, Task task) override;
  bool in_loop() const override { return alive_ && scheduler_.current_owner() == owner_; }

  // The node crashed: later posts are dropped at once.
  void kill() { alive_ = false; }
  // Clock skew: post_after() delays run at (1 + skew) times their length.
  void set_skew(double skew) { skew_ = skew; }
  std::uint64_t refused() const { return refused_; }

 private:
  Scheduler& scheduler_;
  std::uint32_t owner_;
  std::function<SimTime()> delay_us_;
  bool alive_ = true;
  double skew_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace nodenomad::sim_cluster
