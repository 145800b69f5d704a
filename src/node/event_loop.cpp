// ThreadEventLoop: one thread, one ordered task queue, steady-clock timers.
#include "nodenomad/assert.hpp"
#include "nodenomad/event_loop.hpp"

namespace nodenomad {

ThreadEventLoop::ThreadEventLoop() : thread_([this] { run(); }) {}

ThreadEventLoop::~ThreadEventLoop() { stop(); }

void ThreadEventLoop::post(Task task) { post_after(std::chrono::milliseconds(0), std::move(task)); }

void ThreadEventLoop::post_after(std::chrono::milliseconds delay, Task task) {
  const TimePoint due = std::chrono::steady_clock::now() + delay;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.emplace(std::make_pair(due, next_sequence_++), std::move(task));
  }
  wake_.notify_one();
}

bool ThreadEventLoop::in_loop() const { return std::this_thread::get_id() == thread_.get_id(); }

void ThreadEventLoop::stop() {
  NN_ASSERT(!in_loop(), "ThreadEventLoop::stop() called from its own thread");
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  tasks_.clear();
}

void ThreadEventLoop::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto first = tasks_.begin();
    if (first->first.first > std::chrono::steady_clock::now()) {
      wake_.wait_until(lock, first->first.first);
      continue;
    }
    Task task = std::move(first->second);
    tasks_.erase(first);
    lock.unlock();
    task();  // never under the lock: a task posts more tasks
    lock.lock();
  }
}

}  // namespace nodenomad
