#include "storage/commit_queue.hpp"

#include <utility>

#include <fmt/format.h>

namespace nodenomad::storage {
namespace {

// Completion callbacks running on this thread (a blocking write from one of
// them would wait for the round that is calling it).
thread_local int t_callback_depth = 0;

}  // namespace

CommitQueue::CommitQueue(CommitQueueLimits limits, CommitFn commit,
                         std::function<void()> after_commit)
    : limits_(limits), commit_(std::move(commit)), after_commit_(std::move(after_commit)) {
  NN_ASSERT(limits_.max_batch_writes > 0 && limits_.max_pending_writes > 0,
            "commit queue bounds must be positive");
}

bool CommitQueue::in_callback() { return t_callback_depth > 0; }

Status CommitQueue::failure_status_locked() const {
  return Status::failed(fmt::format(
      "the storage engine stopped accepting writes after an I/O failure ({}); this write was not "
      "applied",
      failure_.to_string()));
}

Status CommitQueue::admit_locked(std::size_t payload_bytes) const {
  if (failed_) return failure_status_locked();
  if (queue_.size() >= limits_.max_pending_writes ||
      queued_bytes_ + payload_bytes > limits_.max_pending_bytes) {
    return Status::busy(fmt::format(
        "write queue full: {} writes and {} bytes pending (max_pending_writes {}, "
        "max_pending_bytes {}); the write was not applied",
        queue_.size(), queued_bytes_, limits_.max_pending_writes, limits_.max_pending_bytes));
  }
  return Status::ok();
}

WriteResult CommitQueue::write(std::string& payload) {
  NN_ASSERT(!in_callback(), "a blocking write from a completion callback would wait for itself");
  Waiter waiter;
  std::unique_lock lock(mu_);
  if (Status admitted = admit_locked(payload.size()); !admitted.is_ok()) {
    return WriteResult::refused(std::move(admitted));
  }
  queued_bytes_ += payload.size();
  ++queued_blocking_;
  queue_.push_back(PendingWrite{std::move(payload), {}, &waiter, {}});
  drive(lock, &waiter);
  payload = std::move(waiter.payload);
  return std::move(waiter.result);
}

void CommitQueue::submit(std::string payload, WriteCallbackFn done) {
  NN_ASSERT(done, "submit needs a completion callback");
  std::unique_lock lock(mu_);
  if (Status admitted = admit_locked(payload.size()); !admitted.is_ok()) {
    lock.unlock();
    done(WriteResult::refused(std::move(admitted)));
    return;
  }
  queued_bytes_ += payload.size();
  queue_.push_back(PendingWrite{std::move(payload), std::move(done), nullptr, {}});
  drive(lock, nullptr);
}

void CommitQueue::submit_all(std::vector<PendingWrite> writes) {
  std::vector<PendingWrite> refused;
  std::unique_lock lock(mu_);
  for (PendingWrite& write : writes) {
    NN_ASSERT(write.callback && write.waiter == nullptr, "submit_all takes asynchronous writes");
    if (Status admitted = admit_locked(write.payload.size()); !admitted.is_ok()) {
      write.result = WriteResult::refused(std::move(admitted));
      refused.push_back(std::move(write));
      continue;
    }
    queued_bytes_ += write.payload.size();
    queue_.push_back(std::move(write));
  }
  if (!refused.empty()) {
    lock.unlock();
    answer_async(refused);
    lock.lock();
  }
  drive(lock, nullptr);
}

bool CommitQueue::must_lead_locked() const {
  // With a blocking writer still queued, that writer will lead; it wakes on
  // the notify that ends every round.
  return !leader_active_ && !queue_.empty() && queued_blocking_ == 0;
}

void CommitQueue::drive(std::unique_lock<std::mutex>& lock, const Waiter* waiter) {
  // Each pass waits for a round to end, leads one, or runs the after-commit
  // hook once after rounds this thread led. A blocking caller leaves once its
  // record is done, an asynchronous one as soon as someone else is bound to
  // commit what is queued. The hook (a snapshot) may let writes queue up
  // without a leader, so the queue is checked again after it.
  bool hook_due = false;
  while (true) {
    if (waiter != nullptr && !waiter->done) {
      if (leader_active_) {
        cv_.wait(lock);
        continue;
      }
      NN_ASSERT(!queue_.empty(), "a waiting write is neither queued nor in flight");
      lead_one_round(lock);
      hook_due = true;
      continue;
    }
    if (in_callback()) break;
    if (hook_due && after_commit_) {
      // Only once this caller's own write is done, so that a long hook never
      // holds up the writer it runs on.
      hook_due = false;
      lock.unlock();
      after_commit_();
      lock.lock();
      continue;
    }
    if (!must_lead_locked()) break;
    lead_one_round(lock);
    hook_due = true;
  }
  lock.unlock();
}

void CommitQueue::lead_one_round(std::unique_lock<std::mutex>& lock) {
  leader_active_ = true;
  std::size_t bytes = 0;
  while (!queue_.empty() && batch_.size() < limits_.max_batch_writes &&
         (batch_.empty() || bytes + queue_.front().payload.size() <= limits_.max_batch_bytes)) {
    PendingWrite& front = queue_.front();
    bytes += front.payload.size();
    if (front.waiter != nullptr) --queued_blocking_;
    batch_.push_back(std::move(front));
    queue_.pop_front();
  }
  queued_bytes_ -= bytes;
  const bool already_failed = failed_;
  lock.unlock();

  Status committed = already_failed ? failure_status_locked() : commit_(batch_);
  if (!committed.is_ok()) {
    const Status unknown = Status::failed(fmt::format(
        "the storage engine failed while committing this write ({}); it may or may not be "
        "durable",
        committed.to_string()));
    for (PendingWrite& write : batch_) {
      write.result = WriteResult::refused(already_failed ? committed : unknown);
    }
  }
  answer_async(batch_);

  lock.lock();
  std::vector<PendingWrite> refused;
  if (!committed.is_ok() && !already_failed) fail_locked(committed, refused);
  for (PendingWrite& write : batch_) {
    if (write.waiter == nullptr) continue;
    write.waiter->result = std::move(write.result);
    write.waiter->payload = std::move(write.payload);
    write.waiter->done = true;
  }
  ++batches_;
  writes_ += batch_.size();
  batch_.clear();
  leader_active_ = false;
  cv_.notify_all();
  answer_refused(lock, refused);
}

void CommitQueue::answer_async(std::vector<PendingWrite>& writes) {
  ++t_callback_depth;
  for (PendingWrite& write : writes) {
    if (write.callback) write.callback(std::move(write.result));
  }
  --t_callback_depth;
}

void CommitQueue::fail_locked(const Status& reason, std::vector<PendingWrite>& refused) {
  if (!failed_) {
    failed_ = true;
    failure_ = reason;
  }
  const Status refusal = failure_status_locked();
  while (!queue_.empty()) {
    PendingWrite& front = queue_.front();
    front.result = WriteResult::refused(refusal);
    if (front.waiter != nullptr) --queued_blocking_;
    refused.push_back(std::move(front));
    queue_.pop_front();
  }
  queued_bytes_ = 0;
}

void CommitQueue::answer_refused(std::unique_lock<std::mutex>& lock,
                                 std::vector<PendingWrite>& refused) {
  if (refused.empty()) return;
  for (PendingWrite& write : refused) {
    if (write.waiter == nullptr) continue;
    write.waiter->result = std::move(write.result);
    write.waiter->payload = std::move(write.payload);
    write.waiter->done = true;
  }
  cv_.notify_all();
  lock.unlock();
  answer_async(refused);
  lock.lock();
}

Status CommitQueue::run_exclusive(const std::function<Status()>& fn, bool then_drive) {
  NN_ASSERT(!in_callback(), "run_exclusive from a completion callback would wait for itself");
  std::unique_lock lock(mu_);
  while (leader_active_) cv_.wait(lock);
  leader_active_ = true;
  lock.unlock();
  Status status = fn();
  lock.lock();
  leader_active_ = false;
  std::vector<PendingWrite> refused;
  if (!status.is_ok()) fail_locked(status, refused);
  cv_.notify_all();
  answer_refused(lock, refused);
  if (then_drive) drive(lock, nullptr);  // writes that queued up while fn ran
  return status;
}

void CommitQueue::drive_pending() {
  NN_ASSERT(!in_callback(), "drive_pending from a completion callback");
  std::unique_lock lock(mu_);
  drive(lock, nullptr);
}

void CommitQueue::fail(const Status& reason) {
  std::unique_lock lock(mu_);
  std::vector<PendingWrite> refused;
  fail_locked(reason, refused);
  answer_refused(lock, refused);
}

bool CommitQueue::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

std::uint64_t CommitQueue::batches_committed() const {
  std::lock_guard lock(mu_);
  return batches_;
}

std::uint64_t CommitQueue::writes_committed() const {
  std::lock_guard lock(mu_);
  return writes_;
}

}  // namespace nodenomad::storage
