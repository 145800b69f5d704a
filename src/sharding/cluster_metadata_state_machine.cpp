// MetadataStateMachine: ClusterMetadata behind the StateMachine interface,
// with a published immutable copy for readers on other threads.
#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "nodenomad/assert.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"

namespace nodenomad {

namespace {

// The snapshot is encoded whole when it is opened (the state is small, at
// most kMaxMetadataSnapshotBytes), so the source owns its bytes and may be
// read on another thread while apply() goes on.
class MetadataSnapshotSource final : public SnapshotSource {
 public:
  MetadataSnapshotSource(LogIndex index, std::string bytes)
      : index_(index), bytes_(std::move(bytes)) {}

  LogIndex index() const override { return index_; }

  Result<std::string> next_chunk(std::size_t max_bytes) override {
    if (max_bytes == 0) {
      return Status::invalid_argument("next_chunk: max_bytes must be > 0");
    }
    const std::size_t size = std::min(max_bytes, bytes_.size() - position_);
    std::string chunk = bytes_.substr(position_, size);
    position_ += size;
    return chunk;
  }

 private:
  LogIndex index_;
  std::string bytes_;
  std::size_t position_ = 0;
};

}  // namespace

// Buffers a snapshot's chunks (bounded), then validates it whole before it
// replaces anything: a bad snapshot leaves the old state serving.
class MetadataRestoreSink final : public SnapshotSink {
 public:
  MetadataRestoreSink(MetadataStateMachine& machine, LogIndex index)
      : machine_(machine), index_(index) {}

  Status write_chunk(std::string_view chunk) override {
    if (finished_) return Status::invalid_argument("write_chunk after finish()");
    if (chunk.size() > kMaxMetadataSnapshotBytes - bytes_.size()) {
      return Status::corruption(fmt::format(
          "metadata snapshot for index {} exceeds {} bytes (kMaxMetadataSnapshotBytes)",
          index_.value(), kMaxMetadataSnapshotBytes));
    }
    bytes_.append(chunk);
    return Status::ok();
  }

  Status finish() override {
    if (finished_) return Status::invalid_argument("finish() called twice");
    finished_ = true;
    Result<MetadataSnapshot> decoded = decode_metadata_snapshot(bytes_);
    if (!decoded.is_ok()) return decoded.status();
    if (decoded->applied_index != index_) {
      return Status::corruption(fmt::format(
          "metadata snapshot reflects index {}, but the restore was begun for index {}",
          decoded->applied_index.value(), index_.value()));
    }
    machine_.install(index_, std::move(decoded->metadata));
    return Status::ok();
  }

 private:
  MetadataStateMachine& machine_;
  LogIndex index_;
  std::string bytes_;
  bool finished_ = false;
};

MetadataStateMachine::MetadataStateMachine(ClusterMetadata initial, LogIndex applied_index)
    : state_(std::move(initial)), last_applied_(applied_index) {
  const Status valid = state_.validate();
  NN_ASSERT(valid.is_ok(), "MetadataStateMachine built from an invalid state: ", valid.to_string());
  publish(true);
}

Result<std::string> MetadataStateMachine::apply(LogIndex index, std::string_view command) {
  if (index <= last_applied_) {
    return Status::invalid_argument(fmt::format("apply of index {} at or below last_applied_index {}",
                                                index.value(), last_applied_.value()));
  }
  last_applied_ = index;
  if (command.empty()) {
    // A new leader's no-op entry: nothing changed, but readers waiting for
    // this index may go on.
    publish(false);
    return std::string();
  }
  MetadataResult result;
  Result<MetadataCommand> decoded = decode_metadata_command(command);
  if (decoded.is_ok()) {
    result = state_.apply(*decoded);
  } else {
    // The same bytes fail the same way on every replica, so this is a
    // refusal, not a reason to stop the group.
    result.status = decoded.status();
    result.config_epoch = state_.bootstrap_logged() ? state_.config_epoch() : 0;
  }
  // Refusals change nothing, so the published copy stays (accepted retries
  // that change nothing are rare enough to copy anyway).
  publish(result.ok());
  return encode_metadata_result(result);
}

Result<std::unique_ptr<SnapshotSource>> MetadataStateMachine::open_snapshot() {
  return std::unique_ptr<SnapshotSource>(std::make_unique<MetadataSnapshotSource>(
      last_applied_, encode_metadata_snapshot(last_applied_, state_)));
}

Result<std::unique_ptr<SnapshotSink>> MetadataStateMachine::begin_restore(LogIndex index) {
  return std::unique_ptr<SnapshotSink>(std::make_unique<MetadataRestoreSink>(*this, index));
}

std::shared_ptr<const ClusterMetadata> MetadataStateMachine::current() const {
  std::lock_guard lock(published_mu_);
  return published_;
}

std::pair<LogIndex, std::shared_ptr<const ClusterMetadata>>
MetadataStateMachine::current_with_index() const {
  std::lock_guard lock(published_mu_);
  return {published_index_, published_};
}

void MetadataStateMachine::install(LogIndex index, ClusterMetadata restored) {
  state_ = std::move(restored);
  last_applied_ = index;
  publish(true);
}

void MetadataStateMachine::publish(bool state_changed) {
  // Copy outside the lock: readers only ever wait for a pointer copy.
  std::shared_ptr<const ClusterMetadata> next;
  if (state_changed) next = std::make_shared<const ClusterMetadata>(state_);
  std::lock_guard lock(published_mu_);
  if (next != nullptr) published_ = std::move(next);
  published_index_ = last_applied_;
}

}  // namespace nodenomad
