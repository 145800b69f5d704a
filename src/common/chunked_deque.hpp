// ChunkedDeque: a double-ended queue of trivially copyable values in chunks
// of kChunk values each, for millions of small records that are pushed at
// the back, dropped from the front or cut from the back, and read by
// position (the FileLogStore's entry locations).
//
// Why not std::deque: libstdc++ gives it 512-byte blocks, so two million
// 32-byte locations are 125,000 allocations. Destroying a dropped shard's
// log store freed them all on the node's loop, a 24 ms stall of every
// write in migration_bench's Cleanup. With 64 KiB chunks that is ~1,000
// frees. (A single vector would instead copy the whole array on growth.)
//
// Not thread-safe. References stay valid until their value is dropped.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <type_traits>

#include "nodenomad/assert.hpp"

namespace nodenomad {

template <typename T, std::size_t kChunk = (64u << 10) / sizeof(T)>
class ChunkedDeque {
  static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>);
  static_assert(kChunk > 0);

 public:
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Chunks held (for tests).
  std::size_t chunks() const { return chunks_.size(); }

  const T& operator[](std::size_t i) const {
    NN_ASSERT(i < size_, "ChunkedDeque index ", i, " of ", size_);
    const std::size_t at = head_ + i;
    return chunks_[at / kChunk][at % kChunk];
  }
  const T& front() const { return (*this)[0]; }

  void push_back(const T& value) {
    const std::size_t at = head_ + size_;
    if (at / kChunk == chunks_.size()) {
      chunks_.push_back(std::make_unique_for_overwrite<T[]>(kChunk));
    }
    chunks_[at / kChunk][at % kChunk] = value;
    ++size_;
  }

  // Drops the first `n` values (at most size()).
  void pop_front(std::size_t n) {
    NN_ASSERT(n <= size_, "ChunkedDeque pop_front of ", n, " of ", size_);
    if (n == size_) return clear();
    head_ += n;
    size_ -= n;
    while (head_ >= kChunk) {
      chunks_.pop_front();
      head_ -= kChunk;
    }
  }

  // Keeps the first `n` values (at most size()).
  void truncate(std::size_t n) {
    NN_ASSERT(n <= size_, "ChunkedDeque truncate to ", n, " of ", size_);
    if (n == 0) return clear();
    size_ = n;
    const std::size_t needed = (head_ + size_ + kChunk - 1) / kChunk;
    while (chunks_.size() > needed) chunks_.pop_back();
  }

  void clear() {
    chunks_.clear();
    head_ = 0;
    size_ = 0;
  }

 private:
  std::deque<std::unique_ptr<T[]>> chunks_;
  std::size_t head_ = 0;  // position of front() in chunks_.front()
  std::size_t size_ = 0;
};

}  // namespace nodenomad
