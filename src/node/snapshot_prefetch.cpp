// PrefetchingSnapshotSource: the worker side reads ahead; the loop side
// takes what is ready.
#include "node/snapshot_prefetch.hpp"

#include <fmt/format.h>

namespace nodenomad::node {

PrefetchingSnapshotSource::PrefetchingSnapshotSource(
    std::unique_ptr<SnapshotSource> inner, std::size_t chunk_bytes, std::size_t depth,
    std::function<void(std::function<void()>)> schedule, std::function<void()> on_ready)
    : index_(inner->index()), shared_(std::make_shared<Shared>()), schedule_(std::move(schedule)) {
  shared_->inner = std::move(inner);
  shared_->chunk_bytes = chunk_bytes;
  shared_->depth = std::max<std::size_t>(depth, 1);
  shared_->on_ready = std::move(on_ready);
  std::unique_lock lock(shared_->mu);
  maybe_schedule_locked();
}

PrefetchingSnapshotSource::~PrefetchingSnapshotSource() {
  std::unique_ptr<SnapshotSource> drop;  // destroyed outside the lock
  std::lock_guard lock(shared_->mu);
  shared_->cancelled = true;
  shared_->ready.clear();
  // A running task still reads the inner source: it lets go of it itself.
  if (!shared_->producing) drop = std::move(shared_->inner);
}

bool PrefetchingSnapshotSource::chunk_ready() const {
  std::lock_guard lock(shared_->mu);
  if (!shared_->ready.empty()) return true;
  shared_->waiting = true;
  return false;
}

Result<std::string> PrefetchingSnapshotSource::next_chunk(std::size_t max_bytes) {
  std::unique_lock lock(shared_->mu);
  if (max_bytes < shared_->chunk_bytes) {
    return Status::invalid_argument(fmt::format(
        "a prefetched snapshot is read in chunks of {} bytes; {} were asked for",
        shared_->chunk_bytes, max_bytes));
  }
  if (shared_->ready.empty()) {
    return Status::unavailable("no prefetched snapshot chunk is ready yet");
  }
  Result<std::string> chunk = std::move(shared_->ready.front());
  shared_->ready.pop_front();
  maybe_schedule_locked();
  return chunk;
}

void PrefetchingSnapshotSource::maybe_schedule_locked() {
  Shared& s = *shared_;
  if (s.producing || s.cancelled || !s.inner || s.ready.size() >= s.depth) return;
  s.producing = true;
  schedule_([shared = shared_] { produce(shared); });
}

void PrefetchingSnapshotSource::produce(const std::shared_ptr<Shared>& shared) {
  Shared& s = *shared;
  std::unique_ptr<SnapshotSource> drop;  // destroyed outside the lock
  std::unique_lock lock(s.mu);
  while (!s.cancelled && s.inner && s.ready.size() < s.depth) {
    SnapshotSource* inner = s.inner.get();
    lock.unlock();
    Result<std::string> chunk = inner->next_chunk(s.chunk_bytes);
    lock.lock();
    if (s.cancelled) break;
    if (!chunk.is_ok() || chunk->empty()) drop = std::move(s.inner);  // the end
    s.ready.push_back(std::move(chunk));
    if (s.waiting) {
      s.waiting = false;
      lock.unlock();
      s.on_ready();
      lock.lock();
    }
  }
  s.producing = false;
  if (s.cancelled) drop = std::move(s.inner);
}

}  // namespace nodenomad::node
