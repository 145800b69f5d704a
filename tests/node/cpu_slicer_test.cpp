// CpuSlicer: a background task pauses once per slice of running, for the
// pause, and the next slice starts after the pause (a fake clock; nothing
// sleeps).
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "node/cpu_slicer.hpp"

namespace nodenomad::node {
namespace {

using std::chrono::microseconds;

TEST_CASE("a CPU slicer pauses once per slice of work, for the pause", "[node][cpu_slicer]") {
  CpuSlicer::TimePoint now{};
  std::vector<microseconds> slept;
  CpuSlicer slicer(microseconds(2000), microseconds(500), [&] { return now; },
                   [&](microseconds d) {
                     slept.push_back(d);
                     now += d;  // the pause takes its time
                   });
  // Calls within the first slice do not pause.
  for (int i = 0; i < 19; ++i) {
    now += microseconds(100);
    slicer();
  }
  CHECK(slept.empty());
  now += microseconds(100);  // 2000 us of work
  slicer();
  REQUIRE(slept.size() == 1);
  CHECK(slept[0] == microseconds(500));
  CHECK(slicer.pauses() == 1);
  // The next slice is counted from the end of the pause, not its start.
  now += microseconds(1999);
  slicer();
  CHECK(slicer.pauses() == 1);
  now += microseconds(1);
  slicer();
  CHECK(slicer.pauses() == 2);
  // A call that comes late pauses once, not once per slice missed.
  now += microseconds(10'000);
  slicer();
  CHECK(slicer.pauses() == 3);
  slicer();
  CHECK(slicer.pauses() == 3);
}

}  // namespace
}  // namespace nodenomad::node
