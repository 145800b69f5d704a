#include "nodenomad/clock.hpp"

#include "nodenomad/assert.hpp"

namespace nodenomad {

MonoTime SystemClock::monotonic_now() const {
  return std::chrono::duration_cast<MonoTime>(
      std::chrono::steady_clock::now().time_since_epoch());
}

WallTime SystemClock::wall_now() const {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now());
}

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

void ManualClock::advance(std::chrono::nanoseconds d) {
  NN_ASSERT(d.count() >= 0, "ManualClock cannot move backwards, got ", d.count(), " ns");
  mono_ns_.fetch_add(d.count());
  wall_ms_.fetch_add(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace nodenomad
