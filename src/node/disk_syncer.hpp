// DiskSyncer: the node's one disk thread. Replicas ask for an fsync of
// their LogStore; the thread takes every request waiting, syncs each store
// once, and hands the results back to the event loop. While it syncs, more
// requests gather for the next batch: group commit across Raft groups.
//
// Thread safety: request() from the loop thread; results are posted to the
// loop. stop() joins the thread; requests after stop() are dropped.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "nodenomad/event_loop.hpp"
#include "nodenomad/log_store.hpp"

namespace nodenomad::node {

class DiskSyncer {
 public:
  // Called on the disk thread with each store's result; the callback posts
  // it to the loop.
  using Done = std::function<void(Result<LogIndex>)>;

  // With `inline_loop`, no thread: each sync runs as a task of that loop
  // (deterministic simulation; NodeOptions::background_loop).
  explicit DiskSyncer(EventLoop* inline_loop = nullptr);
  ~DiskSyncer();
  DiskSyncer(const DiskSyncer&) = delete;
  DiskSyncer& operator=(const DiskSyncer&) = delete;

  void request(LogStore& store, Done done);
  void stop();

  std::uint64_t batches() const;
  std::uint64_t syncs() const;
  // Total and worst fsync time of one store, in microseconds.
  std::uint64_t sync_micros_total() const;
  std::uint64_t sync_micros_max() const;

 private:
  struct Request {
    LogStore* store;
    Done done;
  };
  void run();
  void sync_batch(std::vector<Request>& batch);

  EventLoop* inline_loop_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Request> waiting_;
  bool stopping_ = false;
  std::uint64_t batches_ = 0;
  std::uint64_t syncs_ = 0;
  std::uint64_t sync_micros_total_ = 0;
  std::uint64_t sync_micros_max_ = 0;
  std::thread thread_;
};

}  // namespace nodenomad::node
