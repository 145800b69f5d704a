// FileLogStore's writer role: group commit, segment switching and the
// deletion of compacted segments. See file_log_store_impl.hpp for the rules.
#include <fmt/format.h>

#include "log_store/file_log_store_impl.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad::file_log_store_internal {

Result<LogIndex> FileLogStoreImpl::sync() {
  std::unique_lock lock(mu_);
  ++counters_.sync_calls;
  // Everything queued before this call must be durable when it returns; a
  // sync already in flight may not cover it, so wait for the role and then
  // look again: the previous holder's batch may have covered it after all.
  const std::uint64_t target = queued_stream_bytes_;
  while (true) {
    if (!failure_.is_ok()) return failed_status_locked();
    if (durable_stream_bytes_ >= target) return durable_last_index_;
    if (!writer_busy_) break;
    ++waiting_sync_callers_;
    writer_cv_.wait(lock);
    --waiting_sync_callers_;
  }
  NN_RETURN_IF_ERROR(run_writer_locked(lock, /*sync=*/true));
  NN_ASSERT(durable_stream_bytes_ >= target, "sync covered ", durable_stream_bytes_,
            " stream bytes of ", target);
  return durable_last_index_;
}

void FileLogStoreImpl::release_cache(LogIndex below) {
  std::lock_guard lock(mu_);
  if (below <= state_.first_index()) return;
  const LogIndex last = std::min(below.prev(), state_.last_index());
  if (last < state_.first_index()) return;
  // A running store never has absent entries (file_log_store_state.hpp).
  const EntryLocation& at = state_.location(last);
  const RecordPlace end{at.seq, at.offset + at.framed_bytes, 0};
  if (end.seq > release_.seq || (end.seq == release_.seq && end.offset > release_.offset)) {
    release_ = end;
  }
}

Status FileLogStoreImpl::write_if_over_limit_locked(std::unique_lock<std::mutex>& lock) {
  while (queued_stream_bytes_ - written_stream_bytes_ > options_.max_unwritten_bytes) {
    if (!failure_.is_ok()) return failed_status_locked();
    if (writer_busy_) {
      writer_cv_.wait(lock);
      continue;
    }
    NN_RETURN_IF_ERROR(run_writer_locked(lock, /*sync=*/false));
  }
  return Status::ok();
}

Status FileLogStoreImpl::run_writer_locked(std::unique_lock<std::mutex>& lock, bool sync) {
  NN_ASSERT(!writer_busy_ && failure_.is_ok(), "writer role taken twice or after a failure");
  writer_busy_ = true;
  Batch batch = take_batch_locked(sync);
  lock.unlock();
  Status status = write_batch(batch);
  lock.lock();
  finish_batch_locked(batch, status);
  writer_busy_ = false;
  writer_cv_.notify_all();
  return status;
}

FileLogStoreImpl::Batch FileLogStoreImpl::take_batch_locked(bool sync) {
  Batch batch;
  batch.sync = sync;
  batch.chunks.reserve(chunks_.size());
  // std::deque keeps element addresses stable across push_back, so the
  // writer may read these chunks without mu_ while mutations queue more.
  for (const Chunk& chunk : chunks_) batch.chunks.push_back(&chunk);
  chunks_in_flight_ = chunks_.size();
  batch.stream_end = queued_stream_bytes_;
  batch.last_index = state_.last_index();
  batch.release = release_;
  if (sync) {
    for (const Deletion& d : deletions_) {
      if (d.after_stream_bytes > batch.stream_end) break;
      batch.deletions.push_back(d.seq);
    }
  }
  return batch;
}

void FileLogStoreImpl::finish_batch_locked(const Batch& batch, const Status& status) {
  counters_.bytes_written += batch.bytes_written;
  counters_.fsyncs += batch.fsyncs;
  if (!status.is_ok()) {
    // What reached the disk is unknown now; carrying on could acknowledge
    // records that are not there (the PostgreSQL fsync lesson).
    failure_ = status;
    chunks_in_flight_ = 0;
    log(LogLevel::kError, "file_log_store",
        fmt::format("{}: stopping after an I/O error; no more changes are accepted: {}", dir_,
                    status.to_string()));
    return;
  }
  chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(chunks_in_flight_));
  chunks_in_flight_ = 0;
  written_stream_bytes_ = batch.stream_end;
  if (batch.sync) {
    durable_stream_bytes_ = batch.stream_end;
    durable_last_index_ = batch.last_index;
  }
  for (const std::uint64_t seq : batch.deletions) {
    NN_ASSERT(!deletions_.empty() && deletions_.front().seq == seq, "deleted segment ", seq,
              " out of order");
    deletions_.pop_front();
    idle_readers_.erase(seq);
    oldest_seq_ = seq + 1;
    ++counters_.segments_deleted;
  }
}

Status FileLogStoreImpl::write_batch(Batch& batch) {
  for (const Chunk* chunk : batch.chunks) {
    if (!file_ || file_seq_ != chunk->seq) NN_RETURN_IF_ERROR(switch_segment(chunk->seq, batch));
    NN_ASSERT(file_->size() == chunk->offset, file_->path(), " holds ", file_->size(),
              " bytes but the next record goes at offset ", chunk->offset);
    NN_RETURN_IF_ERROR(file_->append(chunk->bytes));
    file_dirty_ = true;
    batch.bytes_written += chunk->bytes.size();
  }
  if (batch.sync && file_dirty_) {
    NN_RETURN_IF_ERROR(file_->sync());
    ++batch.fsyncs;
    file_dirty_ = false;
    drop_released(batch);
  }
  if (!batch.deletions.empty()) NN_RETURN_IF_ERROR(delete_segments(batch.deletions));
  return Status::ok();
}

// Moves writing to segment `seq`. The segment being left is fsynced first, so
// that no bytes of it can be lost once a later segment exists; the new
// segment's directory entry is made durable before any of its records count.
Status FileLogStoreImpl::switch_segment(std::uint64_t seq, Batch& batch) {
  if (file_) {
    NN_ASSERT(seq == file_seq_ + 1, "segment ", file_seq_, " followed by ", seq);
    if (file_dirty_) {
      NN_RETURN_IF_ERROR(file_->sync());
      ++batch.fsyncs;
      file_dirty_ = false;
    }
    // Its last chance: a closed segment's pages stay cached until deleted.
    drop_released(batch);
    NN_RETURN_IF_ERROR(file_->close());
    file_.reset();
  }
  NN_ASSIGN_OR_RETURN(file_, fs_.open_writable(segment_path(dir_, seq), WriteMode::kTruncate));
  file_seq_ = seq;
  return fs_.sync_dir(dir_);
}

void FileLogStoreImpl::drop_released(const Batch& batch) {
  if (!file_ || batch.release.seq < file_seq_) return;
  file_->drop_synced(batch.release.seq > file_seq_ ? WritableFile::kAllSynced
                                                   : batch.release.offset);
}

Status FileLogStoreImpl::delete_segments(const std::vector<std::uint64_t>& seqs) {
  for (const std::uint64_t seq : seqs) {
    const Status removed = fs_.remove(segment_path(dir_, seq));
    if (!removed.is_ok() && !removed.is(StatusCode::kNotFound)) return removed;
  }
  return fs_.sync_dir(dir_);
}

}  // namespace nodenomad::file_log_store_internal
