// PrefetchingSnapshotSource: reads another SnapshotSource's chunks ahead on
// a BackgroundWorker, so that a leader streaming a shard to a learner only
// hands ready chunks to Raft on its event loop. Encoding the records,
// checksumming and copying them is most of what a stream costs its sender
// (docs/benchmarks.md); on the loop it competes with every client request.
//
// At most `depth` chunks wait. When the loop finds none (chunk_ready() is
// false, so Raft stops reading), the next chunk the worker makes calls
// `on_ready` from the worker's thread; the node posts
// RaftEngine::snapshot_chunks_ready() to its loop. An error of the inner
// source is handed out in order, after the chunks before it.
//
// Thread safety: index(), next_chunk(), chunk_ready() and the destructor on
// one thread (the loop); the inner source is read only on the worker's, one
// chunk at a time, and is destroyed by whichever side lets go of it last.
// Destroying this source stops the reading after the chunk in progress.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "nodenomad/state_machine.hpp"

namespace nodenomad::node {

class PrefetchingSnapshotSource final : public SnapshotSource {
 public:
  // `schedule` runs a task on the worker (or drops it once the node stops);
  // `chunk_bytes` is what every next_chunk() will ask for.
  PrefetchingSnapshotSource(std::unique_ptr<SnapshotSource> inner, std::size_t chunk_bytes,
                            std::size_t depth,
                            std::function<void(std::function<void()>)> schedule,
                            std::function<void()> on_ready);
  ~PrefetchingSnapshotSource() override;
  PrefetchingSnapshotSource(const PrefetchingSnapshotSource&) = delete;
  PrefetchingSnapshotSource& operator=(const PrefetchingSnapshotSource&) = delete;

  LogIndex index() const override { return index_; }
  // The next ready chunk; kInvalidArgument if `max_bytes` is smaller than
  // the chunk size this source was made for. Precondition: chunk_ready().
  Result<std::string> next_chunk(std::size_t max_bytes) override;
  bool chunk_ready() const override;

 private:
  struct Shared {
    std::mutex mu;
    std::unique_ptr<SnapshotSource> inner;  // null once read to the end or failed
    std::deque<Result<std::string>> ready;
    bool producing = false;  // a task is scheduled or running
    bool cancelled = false;
    bool waiting = false;    // the loop found nothing ready: call on_ready
    std::size_t chunk_bytes = 0;
    std::size_t depth = 0;
    std::function<void()> on_ready;
  };
  // Runs on the worker: reads until `depth` chunks wait or the end.
  static void produce(const std::shared_ptr<Shared>& shared);
  // Caller holds shared_->mu.
  void maybe_schedule_locked();

  LogIndex index_;
  std::shared_ptr<Shared> shared_;
  std::function<void(std::function<void()>)> schedule_;
};

}  // namespace nodenomad::node
