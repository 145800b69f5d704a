// KvMap: the key -> Record map of one StorageEngine, plus the index of keys
// that carry an expiry (so due keys are found without scanning every key).
//
// Keys are binary-safe. The map holds one reference per record; the key bytes
// live in the record itself (the map slot is a pointer and the key's hash),
// and the hash is xxh3 over the key.
//
// Captures. A snapshot is capture(): the pointers of every current record,
// copied from the slot array without touching a record (no reference count
// changes, so no cache miss per record: O(slots), read in order). Records are
// immutable (record.hpp), so what keeps a capture right while writes go on
// is only that the records it points at stay alive. The map does that with
// graveyards:
//   - a capture holds the newest graveyard of its time; each graveyard holds
//     the next newer one, so a capture keeps every graveyard from its own to
//     the newest alive;
//   - a record that leaves the map (replaced or erased), if a capture may
//     point at it, goes into the newest graveyard instead of being freed; so
//     does the whole slot table when the map is cleared or destroyed;
//   - when the last capture holding a graveyard dies, the graveyard frees
//     its records and lets go of the next one, on whichever thread that is;
//   - a record that leaves after the last capture died, while the threads
//     that dropped the captures may still be freeing graveyards, waits with
//     the map's census of graveyards and is freed by the last of them (or at
//     once if none is left), so that it is never freed before a thread that
//     read it is done (the census's mutex orders the two).
// "May point at it": each record is stamped, when it enters the map, with
// the map's capture epoch, which every capture advances. A record that
// leaves in the epoch it entered was never captured and is freed at once, so
// a key rewritten many times while a capture lives keeps at most one old
// record per capture taken since, not one per write. With no graveyard alive
// (no capture alive) every record that leaves is freed at once. The epoch is
// 32 bits: when it wraps, once every 2^32 captures, capture() restamps every
// record in the map (the only time a capture touches the records). The stamp
// is written by put() (exclusive access) and by that restamp (capture_mu_
// held), and read only by the map: no reader of the record's value sees it.
//
// Listing in steps. Copying the pointers is O(slots): 10-16 ms at a million
// keys, during which no write could run. So a capture of a large map is only
// begun by capture() (O(1): the epoch, the graveyard and the key count) and
// its records are listed later, in steps (Capture::step), by whoever reads
// them, with the map's writes going on between steps. A step walks the slot
// array from where the last one stopped (an iterator: flat-set iterators stay
// valid through inserts and erases that do not rehash). Writes between steps
// keep the listing exact:
//   - a record current at the capture that leaves the map from a slot the
//     walk has not reached yet is added to the capture's list ("left");
//   - a record that enters a slot the walk has not reached yet is noted
//     ("entered") so that the walk skips it;
//   - an erase at the walk's position moves the position on first;
//   - an insert that would rehash (the only time slots move), clear(),
//     reserve(), the map's destruction and the next capture first list the
//     rest of the pending capture at once.
// "Not reached yet" compares slot addresses: a flat set keeps its slots in one
// array and iterates it in address order (a test checks this of the Boost in
// use). The walk reads slots only, never a record, as before. At most one
// capture is pending per map.
//
// Digest. The map keeps its shard digest's bucket sums (shard_digest.hpp)
// up to date: a record entering adds its digest term (computed when the
// record was built, record.hpp) to the bucket of its key's hash, which the
// slot has anyway; a record leaving subtracts it. So a digest is a copy of
// 256 sums taken with a capture (O(1)), not a pass over every record: a
// migration's Verify used to read the whole shard on both nodes for 1-1.5 s
// (docs/migration.md). The sums are a function of the map's contents alone,
// as a recomputation from the records would be (tests compare the two after
// random histories); they cost one addition per record in and out.
//
// Thread safety: none for the map itself; the engine guards a KvMap with its
// state lock (reads, capture() and Capture::step() shared, everything else
// exclusive).
// capture() may run on several threads at once (they serialize on a mutex of
// the map's own). A Capture and the records it points at may be read on any
// thread, while the map changes and after it is destroyed.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
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
    // The key's hash (XXH3_64 of the key), kept so that growing the table
    // never reads a record (a cache miss per key otherwise), and so that a
    // key's digest bucket is read from the slot (shard_digest.hpp).
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
  class Graveyard;
  class Census;
  struct Listing;
  static_assert(sizeof(std::size_t) == 8, "slots cache the whole 64-bit XXH3 of the key");

 public:
  KvMap() = default;
  // Hands the records to the newest graveyard if a capture is alive.
  ~KvMap();
  KvMap(const KvMap&) = delete;
  KvMap& operator=(const KvMap&) = delete;

  // A point-in-time list of the records of a map (capture()). Immutable;
  // may be read on any thread and outlive the map. Move-only: share it
  // through a shared_ptr of its owner (CapturedState).
  class Capture {
   public:
    Capture() = default;
    Capture(Capture&&) noexcept = default;
    Capture& operator=(Capture&&) noexcept = default;
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    ~Capture() = default;  // the list first, then the graveyards that keep its records

    // Whether every record is listed (records() may be called).
    bool listed() const;
    // Lists up to about `max_slots` more slots' records; true once every
    // record is listed. The caller must hold the map still (shared access,
    // like capture()) unless listed() or the map is gone. May run on any
    // thread; steps of one capture serialize.
    bool step(std::size_t max_slots) const;
    // Every record current at capture time, in unspecified order; valid
    // while this Capture lives. Requires listed().
    const std::vector<const Record*>& records() const;
    // The number of those records, known from the start.
    std::size_t size() const { return size_; }
    // Tests only: the record in the slot the listing walks next (null if
    // listed). Same access as step().
    const Record* next_for_testing() const;

   private:
    friend class KvMap;
    std::shared_ptr<Graveyard> keep_alive_;  // declared first: destroyed last
    std::shared_ptr<Listing> listing_;
    std::size_t size_ = 0;
  };

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
  void put(RecordRef record);
  // Inserts `record` if no record has its key and answers true; otherwise
  // drops `record`, changes nothing and answers false (one hash, one probe).
  bool insert_new(RecordRef record);
  // Removes the record found at `spot`, if any; false if there was none.
  bool erase(const Spot& spot);
  bool erase(std::string_view key) { return erase(locate(key)); }
  void clear();
  void reserve(std::size_t keys) {
    finish_pending_listing();
    slots_.reserve(keys);
  }
  // Moves every record out (the map is left empty), for a map that was never
  // captured or whose captures are gone: a staging map handing its records
  // to another. Those handed back by captures (set_writer_frees) come too.
  std::vector<RecordRef> take_all();
  // Whether a capture (or a snapshot stream's) still shares the records:
  // take_all() is then not allowed.
  bool capture_alive() const { return graveyards_alive_ && !newest_grave_.expired(); }

  // The digest's sums over the records in the map (above, "Digest").
  struct DigestSums {
    std::array<std::uint64_t, 256> buckets{};  // kDigestBuckets, by the key hash's top byte
    std::uint64_t bytes = 0;                   // key and value bytes
    bool operator==(const DigestSums&) const = default;
  };
  const DigestSums& digest_sums() const { return sums_; }

  std::size_t size() const { return slots_.size(); }
  // Bytes of keys, values and record headers held (not counting the table).
  std::uint64_t bytes() const { return bytes_; }
  std::size_t keys_with_expiry() const { return by_expiry_.size(); }

  // Appends up to `max_keys` records whose expiry is at or before `now_ms`,
  // earliest expiry first (ties by key, so the choice is deterministic).
  void collect_due(std::int64_t now_ms, std::size_t max_keys,
                   std::vector<const Record*>& out) const;

  // Every current record, kept alive for as long as the Capture lives,
  // whatever is written, removed or cleared later, and after the map is
  // destroyed. A map of up to `list_at_once` keys is listed here (O(slots):
  // copies the pointers out of the slot array and never touches a record,
  // except at the epoch's wraparound, above); a larger one is listed in
  // steps afterwards (above). Shared access is enough (the engine's shared
  // state lock).
  static constexpr std::size_t kListAtOnce = 16384;
  Capture capture(std::size_t list_at_once = kListAtOnce) const;

  // Appends the record of every slot whose cached key hash (XXH3_64 of the
  // key) satisfies keep(hash). Reads the slot array only. The pointers are
  // valid until the next mutation of the map.
  template <typename KeepHash>
  void collect_by_hash(KeepHash&& keep, std::vector<const Record*>& out) const {
    for (const Slot& slot : slots_) {
      if (keep(static_cast<std::uint64_t>(slot.hash))) out.push_back(slot.ref.get());
    }
  }

  // Who frees the records that a capture kept alive once the last capture
  // that needs them is gone. Off (the default): the thread that drops that
  // capture, at once. On: they are handed back to the map, and its writer
  // frees them in steps with free_returned(). Why: the writer allocated
  // them, so with glibc they belong to its arena; another thread freeing a
  // few hundred thousand of them takes that arena's lock for each, and the
  // writer, allocating meanwhile, waits for it (docs/storage.md, "Records
  // handed back"). The map's destruction frees what is still waiting, and
  // turns the hand-back off for the graveyards that die after it.
  void set_writer_frees(bool on);
  // Frees up to `max` records handed back; the number still waiting. The
  // writer's (exclusive access).
  std::size_t free_returned(std::size_t max);
  std::size_t returned() const;

  // Tests only: the capture epoch (set it to reach the wraparound); the
  // records and tables kept in the newest graveyard (0 if none is alive);
  // those parked with the census; and a function every graveyard's
  // destructor calls after freeing what it kept, before it reports to the
  // census (set it while no graveyard can die).
  void set_capture_epoch_for_testing(std::uint32_t epoch) { epoch_ = epoch; }
  std::uint32_t capture_epoch() const { return epoch_; }
  std::size_t newest_graveyard_size_for_testing() const;
  std::size_t parked_for_testing() const;
  static inline void (*graveyard_dying_hook_for_testing)() = nullptr;

 private:
  // The expiry index orders by (expiry, key); it points at records the map
  // holds, so it needs no references of its own.
  struct ExpiryLess {
    bool operator()(const Record* a, const Record* b) const {
      if (a->expiry_ms() != b->expiry_ms()) return a->expiry_ms() < b->expiry_ms();
      return a->key() < b->key();
    }
  };

  // `key_hash`: the record's key's XXH3_64 (its slot's hash).
  void index_added(const Record& record, std::uint64_t key_hash);
  void index_removed(const Record& record, std::uint64_t key_hash);
  // A record enters the map: stamped with the current epoch.
  const Record* admit(const RecordRef& record) const;
  // A record that left the map (its reference now owned by the caller):
  // kept in the newest graveyard if a capture may point at it, else freed.
  void retire(Record* record);
  // The whole table leaves the map (clear, destruction) with a graveyard
  // alive: kept for the captures, or parked with the census.
  void retire_table();
  // Moves to the next capture epoch; at the wrap, restamps every record.
  void advance_epoch() const;
  // The capture being listed in steps, if any (clearing the link once it is
  // listed). Exclusive access.
  std::shared_ptr<Listing> pending_listing();
  // Lists the rest of the pending capture now, if any: before slots move or
  // the table goes.
  void finish_pending_listing() const;
  // Walks up to max_slots slots of `listing` (its mutex held).
  void list_slots(Listing& listing, std::size_t max_slots) const;
  // Notes that `old` (null if none) left, and `entered` (null if none)
  // entered, the slot `slot`, for a capture being listed (its mutex held).
  void note_slot_change(Listing& listing, const Slot* slot, Record* old,
                        const Record* entered) const;

  SlotSet slots_;
  std::set<const Record*, ExpiryLess> by_expiry_;
  std::uint64_t bytes_ = 0;
  DigestSums sums_;

  // Capture bookkeeping. capture() changes these under shared access, so
  // it holds capture_mu_; every other member function has exclusive access.
  mutable std::mutex capture_mu_;
  // The graveyard of the newest capture, alive while any capture (or an
  // older graveyard) holds it.
  mutable std::weak_ptr<Graveyard> newest_grave_;
  // Counts the map's graveyards (created by the first capture).
  mutable std::shared_ptr<Census> census_;
  bool writer_frees_ = false;  // set_writer_frees()
  // Records handed back, taken from the census a batch at a time, that
  // free_returned() has not freed yet (one reference each).
  std::vector<Record*> to_free_;
  // False until a capture is taken, and again once the census has seen
  // every graveyard gone: then records leave the map straight to free().
  mutable bool graveyards_alive_ = false;
  // The capture being listed in steps (weak: a capture dropped unlisted
  // ends it). Set by capture(), under capture_mu_.
  mutable std::weak_ptr<Listing> pending_;
  // 1 .. 2^32 - 1; records stamped 0 predate the last wraparound.
  mutable std::uint32_t epoch_ = 1;
};

}  // namespace nodenomad::storage
