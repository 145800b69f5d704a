// ChunkCompressionHistory: what the last snapshot chunks of each transfer
// did when the envelope codec tried zstd on them, so that a transfer of
// incompressible data (random or already compressed values) stops paying
// about 1 ms of the sending thread per MiB for a frame it then throws away.
//
// The rule, per transfer (a group's snapshot, by its transfer id and meta):
//   - every chunk is tried while fewer than kFailuresBeforeSkipping tries in
//     a row failed to save 1/8 (so compressible data is treated exactly as
//     without a history: every chunk tried, every one that pays compressed);
//   - after that many failures in a row, chunks go out raw without a try,
//     except every kRetryEveryChunks-th one, which is tried again; one that
//     pays ends the skipping, so data that turns compressible is compressed
//     again from the next retry on.
// Chunks the codec never tries (under kMinCompressedChunkBytes, above
// kMaxSnapshotChunkBytes, other messages, compression off) leave the history
// alone. A transfer is forgotten when its last chunk is encoded; a sender
// that keeps more than kMaxTrackedTransfers going at once forgets the least
// recently used one, which then starts afresh (every chunk tried again).
// No clock and no randomness: the same chunks give the same decisions.
//
// One history serves one receiver (a PeerLink): the key does not name the
// peer, and transfer ids are only unique per sender and group.
//
// Thread safety: every method may be called from any thread; a mutex guards
// the table and is held only to read or update it, never across zstd. Two
// threads encoding chunks of one transfer at once may see each other's
// results late (a chunk tried or skipped one turn early); decisions stay
// within the rule's bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "nodenomad/transport.hpp"

namespace nodenomad {

// What the encoder did with an envelope (encode_envelope_with_history).
enum class ChunkEncoding : std::uint8_t {
  kNotTried,        // not a chunk zstd is tried on (see above); version 1
  kCompressed,      // tried, saved at least 1/8: version 2
  kIncompressible,  // tried in vain, sent raw: version 1
  kSkipped,         // not tried, its transfer's recent chunks did not compress: version 1
};

// Which snapshot transfer a chunk belongs to.
struct SnapshotTransferKey {
  GroupId group;
  std::uint64_t transfer_id = 0;
  LogIndex snapshot_index;  // the snapshot's meta, in case a new leader reuses the id
  Term snapshot_term;

  static SnapshotTransferKey of(const Envelope& chunk_envelope);
  bool operator==(const SnapshotTransferKey&) const = default;
};

// Totals since the history was made.
struct ChunkCompressionCounts {
  std::uint64_t attempts = 0;    // chunks given to zstd
  std::uint64_t compressed = 0;  // attempts that saved at least 1/8
  std::uint64_t skipped = 0;     // chunks sent raw without a try
};

class ChunkCompressionHistory {
 public:
  // Failed tries in a row after which chunks are sent raw untried.
  static constexpr std::uint32_t kFailuresBeforeSkipping = 2;
  // While skipping, one chunk in this many is tried (15 skipped, 1 tried).
  static constexpr std::uint32_t kRetryEveryChunks = 16;
  // Transfers remembered at once (about 64 bytes each).
  static constexpr std::size_t kMaxTrackedTransfers = 64;

  ChunkCompressionHistory() = default;
  ChunkCompressionHistory(const ChunkCompressionHistory&) = delete;
  ChunkCompressionHistory& operator=(const ChunkCompressionHistory&) = delete;

  // Whether to give the next chunk of `transfer` to zstd. Counts it as an
  // attempt or as skipped.
  bool should_try(const SnapshotTransferKey& transfer);
  // The outcome of a try that should_try() allowed.
  void record(const SnapshotTransferKey& transfer, bool compressed);
  // The transfer ended (its last chunk was encoded).
  void forget(const SnapshotTransferKey& transfer);

  ChunkCompressionCounts counts() const;
  std::size_t tracked_transfers() const;

 private:
  struct Transfer {
    SnapshotTransferKey key;
    std::uint32_t failures_in_a_row = 0;  // saturates at kFailuresBeforeSkipping
    std::uint32_t skipped_in_a_row = 0;
    std::uint64_t last_used = 0;  // use_count_ at the last use, for eviction
  };

  // The transfer's entry, added (evicting the least recently used one when
  // the table is full) if it has none. Called with mu_ held.
  Transfer& find_or_add(const SnapshotTransferKey& key);

  mutable std::mutex mu_;
  std::vector<Transfer> transfers_;  // at most kMaxTrackedTransfers
  std::uint64_t use_count_ = 0;
  ChunkCompressionCounts counts_;
};

// encode_envelope_to (nodenomad/transport.hpp) that consults and updates
// `history` for snapshot chunks, and says what it did. The bytes written are
// those of encode_envelope_to, except that a chunk the history skips is
// written in version 1 even if it would have compressed.
ChunkEncoding encode_envelope_with_history(const Envelope& envelope, std::string& out,
                                           const EnvelopeEncodeOptions& options,
                                           ChunkCompressionHistory& history);

}  // namespace nodenomad
