// Lets a long CPU-bound task on a background thread step off the CPU now
// and then: a shard's digest for a migration's Verify.
//
// Why (docs/benchmarks.md, ninth round): on the two vCPUs of migration_bench
// both digest threads ran flat out at Verify's start, and in 8 of 10 runs
// both nodes' WAL fdatasyncs then stalled for 120-180 ms at the same moment,
// with the disk idle. Traced: each fdatasync had written its data, and the
// inode write that ends the fdatasync of a file that grew waited for a
// kernel worker (ext4 converts newly written extents after writeback) that
// got no CPU. Running the digests at nice 10, or even SCHED_IDLE, did not
// change that; pausing for 0.5 ms every 2 ms of digest did (no such stall in
// 25 of 26 runs). The digest takes about a quarter longer.
//
// Since the thirteenth round a slice is 1 ms and a pause 1.5 ms: each digest
// takes at most 40% of a core, not 80%, so the two of a move's Verify leave
// most of two vCPUs to the writes. Verify's write p99 fell from 6.2-12.9 ms
// to 5.1-7.5 (four runs each); Verify took 1.36-1.47 s instead of 1.06-1.27.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

#include "nodenomad/storage/storage_engine.hpp"

namespace nodenomad::node {

class CpuSlicer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Now = std::function<TimePoint()>;
  using Sleep = std::function<void(std::chrono::microseconds)>;

  static constexpr std::chrono::microseconds kSlice{1000};
  static constexpr std::chrono::microseconds kPause{1500};

  // The real clock and sleep, kSlice and kPause.
  CpuSlicer()
      : CpuSlicer(kSlice, kPause, [] { return std::chrono::steady_clock::now(); },
                  [](std::chrono::microseconds d) { std::this_thread::sleep_for(d); }) {}
  CpuSlicer(std::chrono::microseconds slice, std::chrono::microseconds pause, Now now, Sleep sleep)
      : slice_(slice), pause_(pause), now_(std::move(now)), sleep_(std::move(sleep)),
        slice_start_(now_()) {}

  // Call often (it reads the clock): once a slice has run since the last
  // pause (or the start), sleeps for the pause and starts the next slice.
  void operator()() {
    if (now_() - slice_start_ < slice_) return;
    sleep_(pause_);
    ++pauses_;
    slice_start_ = now_();
  }

  std::uint64_t pauses() const { return pauses_; }

 private:
  std::chrono::microseconds slice_;
  std::chrono::microseconds pause_;
  Now now_;
  Sleep sleep_;
  TimePoint slice_start_;
  std::uint64_t pauses_ = 0;
};

// A capture's digest for the node's digest worker: in slices with pauses
// between them on a thread of its own; straight through when the worker
// runs its tasks inline (the deterministic simulation, where nothing may
// read a clock or sleep).
inline ShardDigest background_digest(const StateCapture& capture, bool on_own_thread) {
  if (!on_own_thread) return capture.digest();
  CpuSlicer slicer;
  return capture.digest([&slicer] { slicer(); });
}

}  // namespace nodenomad::node
