// MemoTable: the configurations the search has reached, so that it never
// explores one that cannot do better than a configuration already refuted
// (Lowe's memoization, strengthened for maybe operations).
//
// A configuration is (the set of ok operations placed, the set of maybe
// operations spent, the model state). Having spent fewer maybe operations
// is never worse: a maybe operation need not ever be placed. A more general
// state (covers()) is never worse either. So once (ok set, M, s) has been
// fully explored without success, every (ok set, M', s') with M' a superset
// of M and s' covered by s is refuted too. For maybe-free keys this is
// exactly Porcupine's memo.
//
// The ok set is stored as a 128-bit Zobrist fingerprint (XOR of its members'
// keys), the maybe set as an exact bitset. Two different ok sets share a
// fingerprint with probability 2^-128 per pair; such a collision could only
// make the search skip a configuration it never explored (a missed
// linearization, a wrong kIllegal), never accept one that does not exist.
// Below kMaxMemoEntries the chance of any collision is under 2^-80.
//
// Only configurations whose exploration is complete refute others, which
// keeps the argument an induction on completion order; the search marks a
// configuration complete only when nothing in its subtree was cut because
// of an ancestor still being explored (search.cpp, undo()).
//
// Entries that may cover one another are chained in one bucket (newest
// first, searched kMaxChainScan deep); buckets sit in an open-addressing
// table at most a quarter full. Bounded: past
// kMaxMemoEntries (or the search's state budget) new configurations are no
// longer remembered; the search stays correct, only slower.
//
// Thread safety: none; one table per search.
#pragma once

#include <cstdint>
#include <vector>

#include "checker/kv_model.hpp"

namespace nodenomad::testing::detail {

inline constexpr std::size_t kMaxMemoEntries = std::size_t{1} << 23;
// A bucket's chain is searched this deep at most (newest entries first):
// refuting is an optimization, and unbounded chains made lookups quadratic.
inline constexpr std::size_t kMaxChainScan = 16;

class MemoTable {
 public:
  static constexpr std::uint32_t kNotRemembered = ~std::uint32_t{0};

  // `maybe_words`: the length of a maybe-set bitset, in 64-bit words.
  MemoTable(std::uint64_t max_entries, std::size_t maybe_words);

  // False when an explored configuration refutes this one. Otherwise true,
  // and *entry names the remembered configuration (or kNotRemembered) for
  // complete().
  bool visit(std::uint64_t ok_lo, std::uint64_t ok_hi, const KeyState& state,
             const std::vector<std::uint64_t>& maybe_bits, std::uint32_t* entry);

  // The configuration's exploration ended without success.
  void complete(std::uint32_t entry);

  std::size_t size() const { return entries_.size(); }

  // Every answer sequence `state` can give, `general` can give too (a
  // simulation): an absent key with a lower floor accepts every re-create
  // the other does, and a version not yet observed accepts every version
  // the other has. Same presence and value either way.
  static bool covers(const KeyState& general, const KeyState& state) {
    if (general.present != state.present || general.value != state.value) return false;
    if (!general.present) return general.floor <= state.floor;
    if (general.version_known) return state.version_known && general.version == state.version;
    return state.version_known ? state.version > general.version : state.version >= general.version;
  }

 private:
  struct Entry {
    std::uint64_t ok_lo = 0;
    std::uint64_t ok_hi = 0;
    KeyState state;
    std::uint32_t next = 0;  // the next entry of the same bucket, or none
    bool completed = false;
  };
  // A chain of entries whose states may cover one another (bucket_of()).
  struct Bucket {
    std::uint64_t hash = 0;
    std::uint32_t head = 0;  // the newest entry, or none (a free slot)
  };

  static std::uint64_t bucket_of(std::uint64_t ok_lo, const KeyState& state);
  std::size_t slot_of(std::uint64_t bucket) const;
  bool refutes(std::uint32_t index, const std::vector<std::uint64_t>& maybe_bits) const;
  // Whether a completed entry of `bucket` refutes the configuration.
  bool refuted_in(std::uint64_t bucket, std::uint64_t ok_lo, std::uint64_t ok_hi,
                  const KeyState& state, const std::vector<std::uint64_t>& maybe_bits) const;
  void grow();

  std::size_t max_entries_;
  std::size_t maybe_words_;
  std::vector<Entry> entries_;
  std::vector<std::uint64_t> maybe_pool_;  // maybe_words_ words per entry
  std::vector<Bucket> buckets_;            // open addressing, at most a quarter full
  std::size_t bucket_count_ = 0;
};

}  // namespace nodenomad::testing::detail
