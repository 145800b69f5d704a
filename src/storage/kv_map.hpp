// KvMap: the key -> Record map of one StorageEngine, plus the index of keys
// that carry an expiry (so due keys are found without scanning every key).
//
// Keys are binary-safe. The map holds one reference per record; the key bytes
// live in the record itself (the map slot is one pointer), and the hash is
// xxh3 over the key. A snapshot is capture(): a list of references to every
// current record, cheap because records are immutable (record.hpp).
//
// Thread safety: none. The engine guards a KvMap with its state lock (reads
// shared, applies exclusive).
#pragma once

#include <cstdint>
#include <set>
#include <string_view>
#include <vector>

#include <boost/unordered/unordered_flat_set.hpp>
#include <xxhash.h>

#include "storage/record.hpp"

namespace nodenomad::storage {

class KvMap {
 private:
  struct Slot {
    // Mutable so that a write can swap in the new record of the same key in
    // place: the hash and equality depend only on the key bytes, which the
    // old and new record share.
    mutable RecordRef ref;
    // The key's hash, kept so that growing the table never reads a record
    // (a cache miss per key otherwise).
    std::size_t hash;
  };
  // A key with its hash computed once, for lookups that are followed by an
  // insert or a replacement.
  struct HashedKey {
    std::string_view key;
    std::size_t hash;
  };
  static std::size_t hash_key(std::string_view key) {
    return static_cast<std::size_t>(XXH3_64bits(key.data(), key.size()));
  }
  struct SlotHash {
    using is_transparent = void;
    using is_avalanching = void;  // xxh3 mixes well; boost skips its own mixing
    std::size_t operator()(std::string_view key) const { return hash_key(key); }
    std::size_t operator()(const HashedKey& key) const { return key.hash; }
    std::size_t operator()(const Slot& slot) const { return slot.hash; }
  };
  struct SlotEqual {
    using is_transparent = void;
    bool operator()(std::string_view key, const Slot& slot) const { return key == slot.ref->key(); }
    bool operator()(const Slot& slot, std::string_view key) const { return key == slot.ref->key(); }
    bool operator()(const HashedKey& k, const Slot& slot) const {
      return k.hash == slot.hash && k.key == slot.ref->key();
    }
    bool operator()(const Slot& slot, const HashedKey& k) const { return (*this)(k, slot); }
    bool operator()(const Slot& a, const Slot& b) const {
      return a.hash == b.hash && a.ref->key() == b.ref->key();
    }
  };
  using SlotSet = boost::unordered_flat_set<Slot, SlotHash, SlotEqual>;

 public:
  KvMap() = default;
  KvMap(const KvMap&) = delete;
  KvMap& operator=(const KvMap&) = delete;
  KvMap(KvMap&&) = default;
  KvMap& operator=(KvMap&&) = default;

  // A key's place in the map, found or not, with its hash: a put() or
  // erase() at a Spot needs neither a second hash nor a second probe.
  // Valid until the next mutation of the map.
  class Spot {
   public:
    const Record* record() const { return found_ ? it_->ref.get() : nullptr; }

   private:
    friend class KvMap;
    SlotSet::const_iterator it_;
    HashedKey key_;
    bool found_ = false;
  };

  Spot locate(std::string_view key) const {
    Spot spot;
    spot.key_ = HashedKey{key, hash_key(key)};
    spot.it_ = slots_.find(spot.key_);
    spot.found_ = spot.it_ != slots_.end();
    return spot;
  }

  // The record stored under `key`, expired or not; null if none. Valid until
  // the next mutation.
  const Record* find(std::string_view key) const {
    auto it = slots_.find(key);
    return it == slots_.end() ? nullptr : it->ref.get();
  }

  // Stores `record` at `spot` (located with the record's key, no mutation
  // since), replacing the record found there if any.
  void put(const Spot& spot, RecordRef record);
  // Inserts `record`, replacing any record with the same key.
  void put(RecordRef record) {
    const Spot spot = locate(record->key());  // before `record` is moved from
    put(spot, std::move(record));
  }
  // Removes the record found at `spot`, if any; false if there was none.
  bool erase(const Spot& spot);
  bool erase(std::string_view key) { return erase(locate(key)); }
  void clear();
  void reserve(std::size_t keys) { slots_.reserve(keys); }

  std::size_t size() const { return slots_.size(); }
  // Bytes of keys, values and record headers held (not counting the table).
  std::uint64_t bytes() const { return bytes_; }
  std::size_t keys_with_expiry() const { return by_expiry_.size(); }

  // Appends up to `max_keys` records whose expiry is at or before `now_ms`,
  // earliest expiry first (ties by key, so the choice is deterministic).
  void collect_due(std::int64_t now_ms, std::size_t max_keys,
                   std::vector<const Record*>& out) const;

  // References to every record, in unspecified order.
  std::vector<RecordRef> capture() const;

 private:
  // The expiry index orders by (expiry, key); it points at records the map
  // holds, so it needs no references of its own.
  struct ExpiryLess {
    bool operator()(const Record* a, const Record* b) const {
      if (a->expiry_ms() != b->expiry_ms()) return a->expiry_ms() < b->expiry_ms();
      return a->key() < b->key();
    }
  };

  void index_added(const Record& record);
  void index_removed(const Record& record);

  SlotSet slots_;
  std::set<const Record*, ExpiryLess> by_expiry_;
  std::uint64_t bytes_ = 0;
};

}  // namespace nodenomad::storage
