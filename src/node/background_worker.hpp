// BackgroundWorker: one thread that runs long computations off the node's
// event loop (a shard digest over a captured state). A task must not touch
// the node: it posts its result back to the loop itself.
//
// The thread is named (e.g. "nn-digest", for top and perf) and may run at a
// lower CPU priority than the loop (`nice` > 0, Linux: setpriority on the
// thread), so that background work yields the CPU to client requests.
//
// Thread safety: submit() from any thread; stop() (and the destructor) from
// any thread but the worker's; tasks queued and not started are dropped.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "nodenomad/event_loop.hpp"

namespace nodenomad::node {

class BackgroundWorker {
 public:
  // `name`: at most 15 characters (a Linux thread name); `nice`: 0 to 19.
  explicit BackgroundWorker(const char* name = "nn-worker", int nice = 0)
      : name_(name), nice_(nice) {}
  ~BackgroundWorker() { stop(); }
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  // Runs tasks as tasks of `loop` instead of on a thread (deterministic
  // simulation; NodeOptions::background_loop). Before the first submit().
  void run_inline_on(EventLoop* loop) { inline_loop_ = loop; }
  bool runs_inline() const { return inline_loop_ != nullptr; }

  void submit(std::function<void()> task) {
    if (inline_loop_ != nullptr) {
      inline_loop_->post([this, task = std::move(task)] {
        {
          std::lock_guard lock(mu_);
          if (stopped_) return;
        }
        task();
      });
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      tasks_.push_back(std::move(task));
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    wake_.notify_one();
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      tasks_.clear();
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    ::pthread_setname_np(::pthread_self(), name_);
    if (nice_ != 0) {
      // Best effort: a thread may always lower its own priority.
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), nice_);
    }
    std::unique_lock lock(mu_);
    while (true) {
      wake_.wait(lock, [this] { return stopped_ || !tasks_.empty(); });
      if (stopped_) return;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  const char* name_;
  int nice_;
  EventLoop* inline_loop_ = nullptr;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace nodenomad::node
