#include "checker/memo_table.hpp"

#include <utility>

#include "nodenomad/assert.hpp"

namespace nodenomad::testing::detail {

namespace {

constexpr std::size_t kInitialSlots = 1024;
constexpr std::uint32_t kNone = ~std::uint32_t{0};

}  // namespace

MemoTable::MemoTable(std::uint64_t max_entries, std::size_t maybe_words)
    : max_entries_(max_entries < kMaxMemoEntries ? max_entries : kMaxMemoEntries),
      maybe_words_(maybe_words) {
  buckets_.assign(kInitialSlots, Bucket{0, kNone});
}

// States that may cover one another share a bucket: absent states whatever
// their floor, and live ones whose version is not yet observed whatever
// their bound. A live state with a known version buckets with it.
std::uint64_t MemoTable::bucket_of(std::uint64_t ok_lo, const KeyState& state) {
  KeyState bucket = state;
  if (!state.present) bucket.floor = 0;
  if (state.present && !state.version_known) bucket.version = 0;
  const std::uint64_t h = ok_lo ^ hash_state(bucket);
  return h ^ (h >> 32);
}

bool MemoTable::refutes(std::uint32_t index, const std::vector<std::uint64_t>& maybe_bits) const {
  if (!entries_[index].completed) return false;
  const std::uint64_t* explored = maybe_pool_.data() + index * maybe_words_;
  for (std::size_t w = 0; w < maybe_words_; ++w) {
    if ((explored[w] & ~maybe_bits[w]) != 0) return false;  // not a subset
  }
  return true;
}

std::size_t MemoTable::slot_of(std::uint64_t bucket) const {
  const std::size_t mask = buckets_.size() - 1;
  std::size_t slot = bucket & mask;
  while (buckets_[slot].head != kNone && buckets_[slot].hash != bucket) slot = (slot + 1) & mask;
  return slot;
}

bool MemoTable::refuted_in(std::uint64_t bucket, std::uint64_t ok_lo, std::uint64_t ok_hi,
                           const KeyState& state,
                           const std::vector<std::uint64_t>& maybe_bits) const {
  std::size_t scanned = 0;
  for (std::uint32_t i = buckets_[slot_of(bucket)].head; i != kNone && scanned < kMaxChainScan;
       i = entries_[i].next, ++scanned) {
    const Entry& other = entries_[i];
    if (other.ok_lo == ok_lo && other.ok_hi == ok_hi && covers(other.state, state) &&
        refutes(i, maybe_bits)) {
      return true;
    }
  }
  return false;
}

bool MemoTable::visit(std::uint64_t ok_lo, std::uint64_t ok_hi, const KeyState& state,
                      const std::vector<std::uint64_t>& maybe_bits, std::uint32_t* entry) {
  NN_ASSERT(maybe_bits.size() == maybe_words_, "maybe bitset of the wrong length");
  const std::uint64_t bucket = bucket_of(ok_lo, state);
  if (refuted_in(bucket, ok_lo, ok_hi, state, maybe_bits)) return false;
  if (state.present && state.version_known) {
    // A state whose version was not observed yet may cover this one.
    KeyState unobserved = state;
    unobserved.version_known = false;
    if (refuted_in(bucket_of(ok_lo, unobserved), ok_lo, ok_hi, state, maybe_bits)) return false;
  }
  if (entries_.size() >= max_entries_) {
    *entry = kNotRemembered;
    return true;
  }
  Bucket& home = buckets_[slot_of(bucket)];
  if (home.head == kNone) {
    home.hash = bucket;
    ++bucket_count_;
  }
  *entry = static_cast<std::uint32_t>(entries_.size());
  entries_.push_back(Entry{ok_lo, ok_hi, state, home.head, false});
  home.head = *entry;
  maybe_pool_.insert(maybe_pool_.end(), maybe_bits.begin(), maybe_bits.end());
  if (4 * bucket_count_ >= buckets_.size()) grow();
  return true;
}

void MemoTable::complete(std::uint32_t entry) {
  if (entry == kNotRemembered) return;
  NN_ASSERT(entry < entries_.size(), "memo entry ", entry, " does not exist");
  entries_[entry].completed = true;
}

// Rehashes the bucket heads into a table twice as large; the chains stay.
void MemoTable::grow() {
  std::vector<Bucket> old = std::move(buckets_);
  buckets_.assign(2 * old.size(), Bucket{0, kNone});
  for (const Bucket& bucket : old) {
    if (bucket.head != kNone) buckets_[slot_of(bucket.hash)] = bucket;
  }
}

}  // namespace nodenomad::testing::detail
