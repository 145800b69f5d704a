// CommitQueue: group commit for the standalone engine, without a thread of
// its own (LevelDB's writer queue, extended with asynchronous writers).
//
// Writers enqueue a WAL payload. One writer at a time is the *leader*: it
// takes a bounded batch from the front of the queue, hands it to the commit
// function (one WAL append, one fsync, then apply in log order), and answers
// every writer of the batch. Writers that arrive while a leader is busy wait
// (blocking) or return at once (asynchronous); the leader's next round takes
// them all in one batch, so the fsync rate, not the writer count, bounds
// throughput.
//
// Progress without a thread: whenever the queue is non-empty, either a leader
// is active, or a blocking writer whose record is still queued is about to
// become one; a leader whose own record is done keeps leading only while no
// such writer exists. So an asynchronous write is never stranded, and a
// thread that calls submit() may be lent to the engine until the queue is
// empty (in a pipeline where completions submit new writes, that thread
// becomes the engine's commit thread for as long as the pipeline runs).
//
// Failure: if the commit function fails, the queue is failed for good: the
// batch and everything queued are answered kFailed, and so is every later
// write. Nothing is retried.
//
// Thread safety: every method may be called from any thread. Callbacks run on
// the leader's thread with no lock held; they may call submit() but must not
// make a blocking write (asserted: it would wait for itself).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "nodenomad/status.hpp"
#include "nodenomad/storage/command.hpp"

namespace nodenomad::storage {

using WriteCallbackFn = std::function<void(WriteResult)>;

struct PendingWrite {
  std::string payload;       // the WAL payload (wal_format.hpp kind 2)
  WriteCallbackFn callback;  // asynchronous writer, or
  struct Waiter* waiter = nullptr;  // blocking writer
  WriteResult result;        // filled by the commit function
};

struct Waiter {
  bool done = false;  // guarded by the queue's mutex
  WriteResult result;
  std::string payload;  // handed back, so the writer can reuse its buffer
};

// A FIFO of pending writes that keeps its memory: a vector read from a head
// index, emptied (capacity kept) whenever it drains. std::deque would free
// and allocate a block every few writes on the single-writer path.
class WriteFifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  PendingWrite& front() { return items_[head_]; }
  void push_back(PendingWrite write) { items_.push_back(std::move(write)); }
  void pop_front() {
    ++head_;
    if (head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= kCompactAfterItems && head_ * 2 >= items_.size()) {
      // Under sustained load the queue may never drain: drop the consumed
      // front once it is the larger half (amortized O(1) per write).
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  static constexpr std::size_t kCompactAfterItems = 1024;
  std::vector<PendingWrite> items_;
  std::size_t head_ = 0;
};

struct CommitQueueLimits {
  std::size_t max_batch_bytes = 4u << 20;
  std::size_t max_batch_writes = 4096;
  std::size_t max_pending_bytes = 64u << 20;
  std::size_t max_pending_writes = 65536;
};

class CommitQueue {
 public:
  // Commits a batch: makes every payload durable, applies them in order and
  // sets each result. A non-OK return fails the queue (results are replaced).
  using CommitFn = std::function<Status(std::span<PendingWrite> batch)>;

  // `after_commit` (may be empty) runs on a writer's thread, with no lock
  // held, after it led rounds and its own write is done: the engine's hook
  // for work a round made due (a snapshot once the WAL is too long). It must
  // not drive the queue itself; the caller's loop goes on after it.
  CommitQueue(CommitQueueLimits limits, CommitFn commit, std::function<void()> after_commit);

  // Blocks until the write is committed (or refused) and returns its result.
  // `payload` is taken and handed back (its bytes unspecified) so that the
  // caller can reuse the buffer for its next write.
  WriteResult write(std::string& payload);
  // Calls `done` exactly once, after the write is durable and applied (or
  // refused: kBusy, kFailed), possibly before submit() returns.
  void submit(std::string payload, WriteCallbackFn done);
  // Queues every write (payload and callback set) before leading any round,
  // so that one thread can put many writes in flight; each callback is
  // called exactly once, as with submit().
  void submit_all(std::vector<PendingWrite> writes);

  // Runs `fn` while no commit round runs (it waits for the current leader),
  // then commits whatever queued up meanwhile (unless `then_drive` is false:
  // the caller then calls drive_pending() once its own work is done; until
  // then the next writer to arrive commits the queue). fn's error fails the
  // queue.
  Status run_exclusive(const std::function<Status()>& fn, bool then_drive = true);
  // Commits what is queued if nobody else is bound to (see run_exclusive).
  void drive_pending();

  // Fails the queue (an error outside a commit, e.g. a snapshot's fsync).
  void fail(const Status& reason);
  bool failed() const;

  std::uint64_t batches_committed() const;
  std::uint64_t writes_committed() const;

  // True on a thread that is running completion callbacks of this process's
  // commit rounds (where a blocking write would deadlock).
  static bool in_callback();

 private:
  // OK, or why a new write is refused at once (kFailed, kBusy).
  Status admit_locked(std::size_t payload_bytes) const;
  // Leads rounds or waits until `waiter` is done (null: asynchronous
  // caller); returns with `lock` released.
  void drive(std::unique_lock<std::mutex>& lock, const Waiter* waiter);
  void lead_one_round(std::unique_lock<std::mutex>& lock);
  bool must_lead_locked() const;
  Status failure_status_locked() const;
  // Fails the queue and moves every queued write to `refused`.
  void fail_locked(const Status& reason, std::vector<PendingWrite>& refused);
  // Answers refused writes: waiters under the lock, callbacks without it.
  void answer_refused(std::unique_lock<std::mutex>& lock, std::vector<PendingWrite>& refused);
  // Runs the callbacks of asynchronous writes; called with no lock held.
  static void answer_async(std::vector<PendingWrite>& writes);

  const CommitQueueLimits limits_;
  const CommitFn commit_;
  const std::function<void()> after_commit_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  WriteFifo queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t queued_blocking_ = 0;  // blocking writers whose record is still queued
  bool leader_active_ = false;
  bool failed_ = false;
  Status failure_;
  std::uint64_t batches_ = 0;
  std::uint64_t writes_ = 0;
  // The batch of the round in progress; touched only by the current leader.
  std::vector<PendingWrite> batch_;
};

}  // namespace nodenomad::storage
