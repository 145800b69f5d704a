// The largest single allocation through operator new on this thread while
// a LargestAllocation lives: how a test shows that a decoder did not
// allocate from a size it read. tests_transport replaces the global
// operator new (largest_allocation.cpp) to see it; zstd's own contexts come
// from malloc and are not counted.
#pragma once

#include <cstddef>

namespace nodenomad::test_support {

class LargestAllocation {
 public:
  LargestAllocation();
  ~LargestAllocation();
  LargestAllocation(const LargestAllocation&) = delete;
  LargestAllocation& operator=(const LargestAllocation&) = delete;

  std::size_t bytes() const;
};

}  // namespace nodenomad::test_support
