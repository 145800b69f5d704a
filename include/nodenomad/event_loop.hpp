// EventLoop: the one thread a Node runs on. Every Raft group of the node,
// its routing and its client requests run as tasks of one loop, so the
// deterministic cores are never called from two threads at once.
//
// The library ships ThreadEventLoop (its own thread, no Boost) and, for a
// host on Boost.Asio, net::AsioEventLoop (nodenomad/net/asio_event_loop.hpp)
// so the node, the AsioTransport and the HTTP API share one io_context
// (DESIGN.md section 5).
//
// Thread safety: post() and post_after() may be called from any thread.
// Tasks run one at a time, in post order for tasks due at the same time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace nodenomad {

class EventLoop {
 public:
  using Task = std::function<void()>;
  virtual ~EventLoop() = default;
  // Runs `task` on the loop soon. After the loop stopped, tasks are dropped.
  virtual void post(Task task) = 0;
  // Runs `task` on the loop once `delay` has passed (a steady clock).
  virtual void post_after(std::chrono::milliseconds delay, Task task) = 0;
  // True on the loop's own thread.
  virtual bool in_loop() const = 0;
};

// A loop on a thread of its own, started by the constructor and joined by
// stop() (or the destructor). Tasks pending at stop() are dropped.
class ThreadEventLoop final : public EventLoop {
 public:
  ThreadEventLoop();
  ~ThreadEventLoop() override;
  ThreadEventLoop(const ThreadEventLoop&) = delete;
  ThreadEventLoop& operator=(const ThreadEventLoop&) = delete;

  void post(Task task) override;
  void post_after(std::chrono::milliseconds delay, Task task) override;
  bool in_loop() const override;
  // Stops and joins the thread; must not be called from the loop itself.
  void stop();

 private:
  void run();

  using TimePoint = std::chrono::steady_clock::time_point;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  // Due time, then a sequence number: FIFO among tasks due together.
  std::map<std::pair<TimePoint, std::uint64_t>, Task> tasks_;
  std::uint64_t next_sequence_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace nodenomad
