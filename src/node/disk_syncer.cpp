// DiskSyncer: batches of fsyncs on one thread.
#include "node/disk_syncer.hpp"

#include <pthread.h>

#include <chrono>

namespace nodenomad::node {

DiskSyncer::DiskSyncer(EventLoop* inline_loop) : inline_loop_(inline_loop) {
  if (inline_loop_ == nullptr) thread_ = std::thread([this] { run(); });
}

DiskSyncer::~DiskSyncer() { stop(); }

void DiskSyncer::request(LogStore& store, Done done) {
  if (inline_loop_ != nullptr) {
    inline_loop_->post([this, store = &store, done = std::move(done)]() mutable {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      std::vector<Request> batch{Request{store, std::move(done)}};
      sync_batch(batch);
    });
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    waiting_.push_back(Request{&store, std::move(done)});
  }
  wake_.notify_one();
}

void DiskSyncer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t DiskSyncer::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}
std::uint64_t DiskSyncer::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}
std::uint64_t DiskSyncer::sync_micros_total() const {
  std::lock_guard lock(mu_);
  return sync_micros_total_;
}
std::uint64_t DiskSyncer::sync_micros_max() const {
  std::lock_guard lock(mu_);
  return sync_micros_max_;
}

void DiskSyncer::run() {
  ::pthread_setname_np(::pthread_self(), "nn-sync");
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    // Requests still waiting at stop() are dropped: the node is going away
    // and nothing they would acknowledge is promised to anyone yet.
    if (stopping_) return;
    std::vector<Request> batch;
    batch.swap(waiting_);
    lock.unlock();
    sync_batch(batch);
    lock.lock();
  }
}

void DiskSyncer::sync_batch(std::vector<Request>& batch) {
  std::uint64_t total = 0;
  std::uint64_t worst = 0;
  for (Request& r : batch) {
    const auto start = std::chrono::steady_clock::now();
    Result<LogIndex> durable = r.store->sync();
    const auto micros = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                              start)
            .count());
    total += micros;
    worst = std::max(worst, micros);
    r.done(std::move(durable));
  }
  std::lock_guard lock(mu_);
  ++batches_;
  syncs_ += batch.size();
  sync_micros_total_ += total;
  sync_micros_max_ = std::max(sync_micros_max_, worst);
}

}  // namespace nodenomad::node
