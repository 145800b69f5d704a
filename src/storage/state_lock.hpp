// StateLock: an engine's state lock. Readers share it; applying a batch, and
// swapping in a restored state, hold it exclusively. It adds one thing to a
// std::shared_mutex: a reader that lists a capture in steps (KvMap::Capture)
// takes it through a gate that a waiting writer holds, so each of its steps
// lets a writer that arrived meanwhile go first. (glibc's rwlock prefers
// readers: a reader taking it again at once could keep a writer waiting for
// every step.) Ordinary readers do not pass the gate.
//
// Meets Lockable and SharedLockable, for std::unique_lock / std::shared_lock.
// Shared by an engine and its captures (shared_ptr), which may outlive it.
#pragma once

#include <mutex>
#include <shared_mutex>

namespace nodenomad::storage {

class StateLock {
 public:
  void lock() {
    std::lock_guard gate(gate_);
    mu_.lock();
  }
  void unlock() { mu_.unlock(); }
  void lock_shared() { mu_.lock_shared(); }
  void unlock_shared() { mu_.unlock_shared(); }
  // lock_shared() behind any writer already waiting.
  void lock_shared_after_writers() {
    std::lock_guard gate(gate_);
    mu_.lock_shared();
  }

 private:
  std::mutex gate_;  // held by a writer while it waits for mu_
  std::shared_mutex mu_;
};

}  // namespace nodenomad::storage
