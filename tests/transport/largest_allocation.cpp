// A replacement for the global operator new that records, per thread, the
// largest request while a LargestAllocation is watching. Aligned forms are
// not replaced: the code under test does not use them.
#include "transport/largest_allocation.hpp"

#include <cstdlib>
#include <new>

namespace {

thread_local bool t_watching = false;
thread_local std::size_t t_largest = 0;

}  // namespace

namespace nodenomad::test_support {

LargestAllocation::LargestAllocation() {
  t_watching = true;
  t_largest = 0;
}

LargestAllocation::~LargestAllocation() { t_watching = false; }

std::size_t LargestAllocation::bytes() const { return t_largest; }

}  // namespace nodenomad::test_support

namespace {

void* allocate(std::size_t bytes) noexcept {
  if (t_watching && bytes > t_largest) t_largest = bytes;
  return std::malloc(bytes == 0 ? 1 : bytes);
}

void* allocate_or_throw(std::size_t bytes) {
  if (void* p = allocate(bytes)) return p;
  throw std::bad_alloc();
}

}  // namespace

// Every unaligned form, so that no allocation made here is freed by another
// allocator's delete (AddressSanitizer checks the pairs). The aligned forms
// stay the library's, new and delete alike.
void* operator new(std::size_t bytes) { return allocate_or_throw(bytes); }
void* operator new[](std::size_t bytes) { return allocate_or_throw(bytes); }
void* operator new(std::size_t bytes, const std::nothrow_t&) noexcept { return allocate(bytes); }
void* operator new[](std::size_t bytes, const std::nothrow_t&) noexcept { return allocate(bytes); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*bytes*/) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t /*bytes*/) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
