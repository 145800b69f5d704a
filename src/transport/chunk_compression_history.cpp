// ChunkCompressionHistory (chunk_compression_history.hpp).
#include "transport/chunk_compression_history.hpp"

#include <algorithm>

#include "nodenomad/assert.hpp"

namespace nodenomad {

SnapshotTransferKey SnapshotTransferKey::of(const Envelope& chunk_envelope) {
  const SnapshotChunk& chunk = chunk_envelope.message.snapshot;
  return {chunk_envelope.group, chunk.transfer_id, chunk.meta.index, chunk.meta.term};
}

ChunkCompressionHistory::Transfer& ChunkCompressionHistory::find_or_add(
    const SnapshotTransferKey& key) {
  ++use_count_;
  const auto same = [&](const Transfer& t) { return t.key == key; };
  if (auto it = std::find_if(transfers_.begin(), transfers_.end(), same);
      it != transfers_.end()) {
    it->last_used = use_count_;
    return *it;
  }
  if (transfers_.size() >= kMaxTrackedTransfers) {
    // The slot of the least recently used transfer; that one starts afresh
    // if it sends again.
    auto oldest = std::min_element(transfers_.begin(), transfers_.end(),
                                   [](const Transfer& a, const Transfer& b) {
                                     return a.last_used < b.last_used;
                                   });
    *oldest = Transfer{key, 0, 0, use_count_};
    return *oldest;
  }
  transfers_.push_back(Transfer{key, 0, 0, use_count_});
  NN_ASSERT(transfers_.size() <= kMaxTrackedTransfers, "the history outgrew its bound");
  return transfers_.back();
}

bool ChunkCompressionHistory::should_try(const SnapshotTransferKey& transfer) {
  std::lock_guard lock(mu_);
  Transfer& t = find_or_add(transfer);
  if (t.failures_in_a_row < kFailuresBeforeSkipping ||
      t.skipped_in_a_row + 1 >= kRetryEveryChunks) {
    t.skipped_in_a_row = 0;
    ++counts_.attempts;
    return true;
  }
  ++t.skipped_in_a_row;
  ++counts_.skipped;
  return false;
}

void ChunkCompressionHistory::record(const SnapshotTransferKey& transfer, bool compressed) {
  std::lock_guard lock(mu_);
  Transfer& t = find_or_add(transfer);
  if (compressed) {
    ++counts_.compressed;
    t.failures_in_a_row = 0;
    return;
  }
  t.failures_in_a_row = std::min(t.failures_in_a_row + 1, kFailuresBeforeSkipping);
}

void ChunkCompressionHistory::forget(const SnapshotTransferKey& transfer) {
  std::lock_guard lock(mu_);
  std::erase_if(transfers_, [&](const Transfer& t) { return t.key == transfer; });
}

ChunkCompressionCounts ChunkCompressionHistory::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

std::size_t ChunkCompressionHistory::tracked_transfers() const {
  std::lock_guard lock(mu_);
  return transfers_.size();
}

}  // namespace nodenomad
