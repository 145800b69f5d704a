// Clock: the only way NodeNomad code learns the time.
//
// Deterministic cores never call a clock at all (time reaches them as ticks or
// as an argument); the runtime and standalone conveniences read one through
// this seam so that tests and the simulator can drive time by hand.
//
// Thread safety: SystemClock is stateless and safe from any thread.
// ManualClock is safe from any thread (its readings are atomics), though a test
// usually drives it from one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace nodenomad {

// Monotonic time: nanoseconds since an arbitrary start; never goes backwards.
using MonoTime = std::chrono::nanoseconds;

// Wall time: milliseconds since the Unix epoch (UTC). TTL expiries are wall
// times chosen by the writer's clock.
using WallTime = std::chrono::sys_time<std::chrono::milliseconds>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime monotonic_now() const = 0;
  virtual WallTime wall_now() const = 0;
};

class SystemClock final : public Clock {
 public:
  MonoTime monotonic_now() const override;
  WallTime wall_now() const override;

  // A process-wide instance, for callers that inject nothing.
  static SystemClock& instance();
};

// A clock that moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(MonoTime mono_start = MonoTime{0},
                       WallTime wall_start = WallTime{std::chrono::milliseconds{1'700'000'000'000}})
      : mono_ns_(mono_start.count()), wall_ms_(wall_start.time_since_epoch().count()) {}

  MonoTime monotonic_now() const override { return MonoTime{mono_ns_.load()}; }
  WallTime wall_now() const override { return WallTime{std::chrono::milliseconds{wall_ms_.load()}}; }

  // Moves both clocks forward by `d` (d >= 0).
  void advance(std::chrono::nanoseconds d);
  // Sets the wall clock alone (it may jump backwards, as NTP can make it).
  void set_wall(WallTime t) { wall_ms_.store(t.time_since_epoch().count()); }

 private:
  std::atomic<std::int64_t> mono_ns_;
  std::atomic<std::int64_t> wall_ms_;
};

}  // namespace nodenomad
