#include "storage/restore_writer.hpp"

#include <pthread.h>

#include <utility>

#include "nodenomad/assert.hpp"

namespace nodenomad::storage {

RestoreFileWriter::RestoreFileWriter(std::unique_ptr<WritableFile> file,
                                     RestoreWriterOptions options)
    : options_(options), file_(std::move(file)) {
  NN_ASSERT(file_ != nullptr, "a restore writer needs a file");
  NN_ASSERT(options_.max_queued_bytes > 0, "restore writer queue bound of 0 bytes");
}

RestoreFileWriter::~RestoreFileWriter() {
  stop_thread(/*abandon=*/true);
  if (file_ != nullptr) (void)file_->close();  // best effort: the file is being thrown away
}

void RestoreFileWriter::stop_thread(bool abandon) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    abandon_ = abandon_ || abandon;
  }
  work_cv_.notify_one();
  thread_.join();
}

Status RestoreFileWriter::append(std::string_view chunk) {
  NN_ASSERT(!finished_, "append to a restore writer after finish");
  if (chunk.empty()) {
    std::lock_guard lock(mu_);
    return error_;
  }
  if (!options_.use_thread) {
    {
      std::lock_guard lock(mu_);
      if (!error_.is_ok()) return error_;
    }
    write_out(chunk);
    std::lock_guard lock(mu_);
    return error_;
  }
  std::string buffer;
  {
    std::lock_guard lock(mu_);
    if (!error_.is_ok()) return error_;  // an earlier chunk's error surfaces here
    if (!pool_.empty()) {
      buffer = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  buffer.assign(chunk);  // the copy, outside the lock
  std::unique_lock lock(mu_);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  // The writer is behind by queued_bytes_: wait while this chunk would take
  // it past the bound (a chunk alone over the bound waits for an empty queue).
  space_cv_.wait(lock, [&] {
    return !error_.is_ok() || queued_bytes_ == 0 ||
           queued_bytes_ + buffer.size() <= options_.max_queued_bytes;
  });
  if (!error_.is_ok()) return error_;
  queued_bytes_ += buffer.size();
  queue_.push_back(std::move(buffer));
  lock.unlock();
  work_cv_.notify_one();
  return Status::ok();
}

void RestoreFileWriter::run() {
  ::pthread_setname_np(::pthread_self(), "nn-restore");
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() || abandon_) break;  // stop_ with the queue written, or abandoned
    std::string chunk = std::move(queue_.front());
    queue_.pop_front();
    const bool write = error_.is_ok();  // after an error, chunks are only dropped
    lock.unlock();
    if (write) write_out(chunk);
    lock.lock();
    queued_bytes_ -= chunk.size();
    if (pool_.size() < kPooledBuffers && chunk.capacity() <= kMaxPooledBufferBytes) {
      pool_.push_back(std::move(chunk));
    }
    space_cv_.notify_one();
  }
}

void RestoreFileWriter::write_out(std::string_view chunk) {
  Status status = file_->append(chunk);
  bool synced = false;
  if (status.is_ok()) {
    unsynced_bytes_ += chunk.size();
    unflushed_bytes_ += chunk.size();
    if (options_.sync_every_bytes > 0 && unsynced_bytes_ >= options_.sync_every_bytes) {
      status = file_->sync();
      synced = true;
      unsynced_bytes_ = 0;
      unflushed_bytes_ = 0;
      // What is durable leaves the page cache, so that the next appends
      // reuse its pages (WritableFile::drop_synced, docs/storage.md).
      if (status.is_ok()) file_->drop_synced();
    } else if (options_.writeback_every_bytes > 0 &&
               unflushed_bytes_ >= options_.writeback_every_bytes) {
      // A failure here is a device error all the same: kept like a sync's.
      status = file_->start_writeback();
      synced = !status.is_ok();
      unflushed_bytes_ = 0;
    }
  }
  std::lock_guard lock(mu_);
  if (synced && status.is_ok()) ++syncs_;
  if (status.is_ok() || !error_.is_ok()) return;
  error_ = std::move(status);
  sync_error_ = synced;
}

Result<std::unique_ptr<WritableFile>> RestoreFileWriter::finish() {
  NN_ASSERT(!finished_, "a restore writer finished twice");
  finished_ = true;
  stop_thread(/*abandon=*/false);
  std::lock_guard lock(mu_);
  NN_ASSERT(queue_.empty() || !error_.is_ok(), "the restore writer stopped with chunks queued");
  if (!error_.is_ok()) return error_;
  return std::move(file_);
}

bool RestoreFileWriter::sync_failed() const {
  std::lock_guard lock(mu_);
  return sync_error_;
}

std::uint64_t RestoreFileWriter::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

}  // namespace nodenomad::storage

namespace nodenomad::storage {

std::size_t RestoreFileWriter::queued_bytes() const {
  std::lock_guard lock(mu_);
  return queued_bytes_;
}

}  // namespace nodenomad::storage
