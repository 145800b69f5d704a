#include "storage/kv_map.hpp"

#include <atomic>

namespace nodenomad::storage {

// How many graveyards of one map are alive, and what waits for the last of
// them. Shared by the map and its graveyards (it outlives the map if they do).
//
// Why it exists: when the map finds its newest graveyard gone, every capture
// is gone, but the threads that dropped them may still be inside the
// graveyards' destructors, and the map must not free a record they read
// until it is ordered after them. Every graveyard's destructor ends in
// graveyard_gone(), under mu_; the map's dispose() takes mu_ too, so once it
// sees no graveyard alive, everything the captures' threads did happens
// before what the map does next. Until then, the record (or table) is parked
// here and freed by the last graveyard to go.
class KvMap::Census {
 public:
  ~Census() {
    for (Record* record : parked_records_) record->release();  // none: the last graveyard took them
    for (std::vector<Record*>& records : returned_) {
      for (Record* record : records) record->release();  // none: the map freed them
    }
  }

  std::size_t parked() {
    std::lock_guard lock(mu_);
    return parked_records_.size() + parked_tables_.size();
  }

  void graveyard_born() {
    std::lock_guard lock(mu_);
    ++live_;
  }

  void graveyard_gone() {
    std::vector<Record*> records;
    std::vector<SlotSet> tables;
    {
      std::lock_guard lock(mu_);
      NN_ASSERT(live_ > 0, "more graveyards gone than born");
      if (--live_ == 0) {
        records.swap(parked_records_);
        tables.swap(parked_tables_);
      }
    }
    for (Record* record : records) record->release();
  }  // the parked tables are freed here, outside the lock

  // Hands the records of a dying graveyard back to the map's writer, which
  // frees them in steps (KvMap::free_returned), if the map asked for that
  // and is alive; else leaves them to the caller. True if taken (then
  // `records` is left empty).
  bool take_back(std::vector<Record*>& records) {
    if (records.empty()) return false;
    std::lock_guard lock(mu_);
    if (!writer_frees_) return false;
    returned_count_.fetch_add(records.size(), std::memory_order_relaxed);
    returned_.push_back(std::move(records));
    records.clear();
    return true;
  }

  std::size_t returned() const { return returned_count_.load(std::memory_order_relaxed); }

  // Moves every record handed back out, each with its reference.
  std::vector<Record*> take_returned() {
    std::vector<Record*> all;
    std::lock_guard lock(mu_);
    for (std::vector<Record*>& records : returned_) all.insert(all.end(), records.begin(), records.end());
    returned_.clear();
    returned_count_.store(0, std::memory_order_relaxed);
    return all;
  }

  // The map's choice (set_writer_frees); false also once the map is gone,
  // so that later graveyards free their own records.
  void set_writer_frees(bool on) {
    std::lock_guard lock(mu_);
    writer_frees_ = on;
  }

  // Frees `record` (a reference the map gave up) now if no graveyard is
  // alive, else parks it for the last one. True if none is alive.
  bool dispose(Record* record) {
    {
      std::lock_guard lock(mu_);
      if (live_ > 0) {
        parked_records_.push_back(record);
        return false;
      }
    }
    record->release();
    return true;
  }
  bool dispose(SlotSet&& table) {
    std::lock_guard lock(mu_);
    if (live_ == 0) return true;  // the caller frees it
    parked_tables_.push_back(std::move(table));
    return false;
  }

 private:
  std::mutex mu_;
  std::uint64_t live_ = 0;                // guarded by mu_
  std::vector<Record*> parked_records_;   // guarded by mu_; one reference each
  std::vector<SlotSet> parked_tables_;    // guarded by mu_
  bool writer_frees_ = false;             // guarded by mu_
  std::vector<std::vector<Record*>> returned_;  // guarded by mu_; one reference each
  std::atomic<std::size_t> returned_count_{0};  // their number (written under mu_)
};

// Keeps alive the records that left a map while a capture might still point
// at them (kv_map.hpp). Owned by the captures taken since it was the newest
// graveyard and by the graveyard just older than it; the map only points at
// the newest one, weakly.
//
// Thread safety: records_ and tables_ are filled only by the map, under its
// exclusive access, while it holds a reference; they are emptied by the
// destructor, which runs on the thread that drops the last reference. newer_
// is set once, by the map, and read by older graveyards' destructors on any
// thread: link_mu_ guards it.
class KvMap::Graveyard {
 public:
  explicit Graveyard(std::shared_ptr<Census> census) : census_(std::move(census)) {
    census_->graveyard_born();
  }
  Graveyard(const Graveyard&) = delete;
  Graveyard& operator=(const Graveyard&) = delete;
  ~Graveyard();

  void add(Record* record) { records_.push_back(record); }
  void add(SlotSet&& table) { tables_.push_back(std::move(table)); }
  bool empty() const { return records_.empty() && tables_.empty(); }
  std::size_t size() const { return records_.size() + tables_.size(); }
  void link_newer(std::shared_ptr<Graveyard> newer) {
    std::lock_guard lock(link_mu_);
    NN_ASSERT(newer_ == nullptr, "a graveyard linked twice");
    newer_ = std::move(newer);
  }

 private:
  // Takes next's link to the graveyard after it if `next` is this thread's
  // alone, so that dropping `next` does not recurse down the chain.
  static std::shared_ptr<Graveyard> unlink_if_sole_owner(std::shared_ptr<Graveyard>& next);

  const std::shared_ptr<Census> census_;
  std::vector<Record*> records_;  // one reference each
  std::vector<SlotSet> tables_;   // whole tables of cleared or destroyed maps
  std::mutex link_mu_;
  std::shared_ptr<Graveyard> newer_;
};

KvMap::Graveyard::~Graveyard() {
  // Drop the chain of newer graveyards iteratively: a chain may be as long
  // as the captures taken while the oldest one lived, too deep to recurse.
  std::shared_ptr<Graveyard> next = std::move(newer_);  // ours alone: we are dying
  while (next != nullptr) {
    std::shared_ptr<Graveyard> after = unlink_if_sole_owner(next);
    if (after == nullptr) break;  // shared, or the newest: just drop our reference
    next = std::move(after);      // frees the previous one here, with no chain left to recurse
  }
  next.reset();
  if (!census_->take_back(records_)) {
    for (Record* record : records_) record->release();
  }
  tables_.clear();
  if (graveyard_dying_hook_for_testing != nullptr) graveyard_dying_hook_for_testing();
  census_->graveyard_gone();  // last: after everything this graveyard freed
}

std::shared_ptr<KvMap::Graveyard> KvMap::Graveyard::unlink_if_sole_owner(
    std::shared_ptr<Graveyard>& next) {
  std::lock_guard lock(next->link_mu_);
  // Unlinked, it may be the map's newest graveyard, which the map can still
  // hand to a new capture: leave it alone. Linked, nothing can take a new
  // reference to it (the map only hands out its newest), so a count of one
  // (ours) cannot grow again and the link is ours to take.
  if (next->newer_ == nullptr || next.use_count() != 1) return nullptr;
  return std::move(next->newer_);
}

// A capture being listed in steps (kv_map.hpp), shared by the Capture and,
// weakly, the map. mu serializes steps; the map's writers, which have
// exclusive access and so never overlap a step, take it too, for a step on a
// map that is being destroyed.
struct KvMap::Listing {
  std::mutex mu;
  std::atomic<bool> done{false};
  // Guarded by mu; while !done:
  const KvMap* map = nullptr;        // the map being walked
  SlotSet::const_iterator next;      // the first slot not walked yet
  const Slot* next_slot = nullptr;   // its address: slots before it were walked
  std::uint32_t epoch = 0;           // records stamped with it entered after the capture
  std::vector<const Record*> records;
  std::vector<const Record*> left;   // current at the capture, left an unwalked slot
  boost::unordered_flat_set<const Record*> entered;  // entered an unwalked slot since

  bool walked(const Slot* slot) const { return slot < next_slot; }
  void finish() {
    records.insert(records.end(), left.begin(), left.end());
    left = {};
    entered = {};
    done.store(true, std::memory_order_release);
  }
};

bool KvMap::Capture::listed() const {
  return listing_ == nullptr || listing_->done.load(std::memory_order_acquire);
}

bool KvMap::Capture::step(std::size_t max_slots) const {
  if (listed()) return true;
  std::lock_guard lock(listing_->mu);
  if (listing_->done.load(std::memory_order_relaxed)) return true;
  const KvMap* map = listing_->map;
  map->list_slots(*listing_, max_slots);
  return listing_->done.load(std::memory_order_relaxed);
}

const std::vector<const Record*>& KvMap::Capture::records() const {
  static const std::vector<const Record*> kNone;
  if (listing_ == nullptr) return kNone;
  NN_ASSERT(listed(), "records() of a capture not listed yet: step() it first");
  return listing_->records;
}

const Record* KvMap::Capture::next_for_testing() const {
  if (listed()) return nullptr;
  std::lock_guard lock(listing_->mu);
  return listing_->done.load(std::memory_order_relaxed) ? nullptr : listing_->next->ref.get();
}

void KvMap::list_slots(Listing& listing, std::size_t max_slots) const {
  const auto end = slots_.end();
  if (listing.entered.empty()) {
    for (std::size_t n = 0; n < max_slots && listing.next != end; ++n, ++listing.next) {
      listing.records.push_back(listing.next->ref.get());
    }
  } else {
    for (std::size_t n = 0; n < max_slots && listing.next != end; ++n, ++listing.next) {
      const Record* record = listing.next->ref.get();
      if (!listing.entered.contains(record)) listing.records.push_back(record);
    }
  }
  if (listing.next == end) {
    listing.map = nullptr;
    listing.finish();
  } else {
    listing.next_slot = &*listing.next;
  }
}

std::shared_ptr<KvMap::Listing> KvMap::pending_listing() {
  if (pending_.expired()) return nullptr;  // also a never-set weak_ptr: no atomic
  std::shared_ptr<Listing> listing = pending_.lock();
  if (listing == nullptr || listing->done.load(std::memory_order_acquire)) {
    pending_.reset();
    return nullptr;
  }
  return listing;
}

void KvMap::finish_pending_listing() const {
  std::shared_ptr<Listing> listing = pending_.lock();
  if (listing == nullptr) return;
  std::lock_guard lock(listing->mu);
  if (!listing->done.load(std::memory_order_relaxed)) list_slots(*listing, SIZE_MAX);
  pending_.reset();
}

void KvMap::note_slot_change(Listing& listing, const Slot* slot, Record* old,
                             const Record* entered) const {
  if (listing.done.load(std::memory_order_relaxed) || listing.walked(slot)) return;
  if (old != nullptr && old->map_epoch() != listing.epoch) listing.left.push_back(old);
  if (entered != nullptr) listing.entered.insert(entered);
}

KvMap::~KvMap() {
  finish_pending_listing();
  if (census_ != nullptr) {
    census_->set_writer_frees(false);  // graveyards dying later free their own
    for (Record* record : census_->take_returned()) record->release();
  }
  for (Record* record : to_free_) record->release();
  if (slots_.empty() || !graveyards_alive_) return;  // the members free the records
  by_expiry_.clear();
  retire_table();
}

void KvMap::retire_table() {
  if (std::shared_ptr<Graveyard> grave = newest_grave_.lock()) {
    grave->add(std::move(slots_));  // O(1): the captures free the records
  } else if (census_->dispose(std::move(slots_))) {
    graveyards_alive_ = false;  // none left: freed just below
  }                             // else parked, for the last graveyard to free
  slots_ = SlotSet();
}

void KvMap::index_added(const Record& record, std::uint64_t key_hash) {
  bytes_ += record.footprint();
  sums_.buckets[key_hash >> 56] += record.digest_term();  // wraps: sums are mod 2^64
  sums_.bytes += record.key().size() + record.value().size();
  if (record.has_expiry()) by_expiry_.insert(&record);
}

void KvMap::index_removed(const Record& record, std::uint64_t key_hash) {
  bytes_ -= record.footprint();
  sums_.buckets[key_hash >> 56] -= record.digest_term();
  sums_.bytes -= record.key().size() + record.value().size();
  if (record.has_expiry()) {
    const std::size_t erased = by_expiry_.erase(&record);
    NN_ASSERT(erased == 1, "a record with an expiry was missing from the expiry index");
  }
}

const Record* KvMap::admit(const RecordRef& record) const {
  NN_ASSERT(record, "a null record put in the map");
  record->set_map_epoch(epoch_);
  return record.get();
}

void KvMap::retire(Record* record) {
  // Entered in this epoch: no capture was taken since, none points at it.
  // No graveyard alive since the census said so: no capture at all.
  if (record->map_epoch() == epoch_ || !graveyards_alive_) {
    record->release();
    return;
  }
  if (std::shared_ptr<Graveyard> grave = newest_grave_.lock()) {
    grave->add(record);
    return;
  }
  // Every capture is gone, but maybe not yet every graveyard's destructor.
  if (census_->dispose(record)) graveyards_alive_ = false;
}

void KvMap::put(const Spot& spot, RecordRef record) {
  NN_ASSERT(record && record->key() == spot.key_.key, "put of a record at another key's spot");
  const Record* added = admit(record);
  // Old out before new in: the expiry index compares (expiry, key), so an
  // old and a new record with the same expiry are "equal" there.
  if (spot.found_) {
    index_removed(*spot.it_->ref, spot.key_.hash);
    index_added(*record, spot.key_.hash);
    Record* old = spot.it_->ref.detach();
    spot.it_->ref = std::move(record);
    if (std::shared_ptr<Listing> listing = pending_listing()) {
      std::lock_guard lock(listing->mu);
      note_slot_change(*listing, &*spot.it_, old, added);
    }
    retire(old);
    return;
  }
  index_added(*record, spot.key_.hash);
  if (std::shared_ptr<Listing> listing = pending_listing()) {
    if (slots_.size() >= slots_.max_load()) {  // this insert rehashes: slots move
      finish_pending_listing();
    } else {
      std::lock_guard lock(listing->mu);
      const auto at = slots_.insert(Slot{std::move(record), spot.key_.hash}).first;
      note_slot_change(*listing, &*at, nullptr, added);
      return;
    }
  }
  slots_.insert(Slot{std::move(record), spot.key_.hash});
}

void KvMap::put(RecordRef record) {
  const Spot spot = locate(record->key());  // before `record` is moved from
  put(spot, std::move(record));
}

bool KvMap::insert_new(RecordRef record) {
  const Record* added = admit(record);
  const std::size_t hash = hash_key(added->key());
  std::shared_ptr<Listing> listing = pending_listing();
  if (listing != nullptr && slots_.size() >= slots_.max_load()) {  // may rehash
    finish_pending_listing();
    listing = nullptr;
  }
  std::unique_lock<std::mutex> lock;
  if (listing != nullptr) lock = std::unique_lock(listing->mu);
  // insert() probes once; if the key is there, the temporary Slot (and the
  // record with it) is dropped and the map is unchanged.
  const auto [at, inserted] = slots_.insert(Slot{std::move(record), hash});
  if (!inserted) return false;
  if (listing != nullptr) note_slot_change(*listing, &*at, nullptr, added);
  index_added(*added, hash);
  return true;
}

bool KvMap::erase(const Spot& spot) {
  if (!spot.found_) return false;
  index_removed(*spot.it_->ref, spot.key_.hash);
  Record* old = spot.it_->ref.detach();
  if (std::shared_ptr<Listing> listing = pending_listing()) {
    std::lock_guard lock(listing->mu);
    note_slot_change(*listing, &*spot.it_, old, nullptr);
    if (listing->next == spot.it_) {  // the walk's position goes: move it on first
      ++listing->next;
      if (listing->next == slots_.end()) {
        listing->map = nullptr;
        listing->finish();
      } else {
        listing->next_slot = &*listing->next;
      }
    }
  }
  slots_.erase(spot.it_);
  retire(old);
  return true;
}

void KvMap::clear() {
  finish_pending_listing();
  by_expiry_.clear();
  bytes_ = 0;
  sums_ = DigestSums();
  if (slots_.empty() || !graveyards_alive_) {
    slots_.clear();
    return;
  }
  retire_table();
}

std::vector<RecordRef> KvMap::take_all() {
  NN_ASSERT(!graveyards_alive_ || newest_grave_.expired(),
            "take_all() of a map with a capture alive");
  std::vector<RecordRef> records;
  records.reserve(slots_.size());
  for (const Slot& slot : slots_) records.push_back(std::move(slot.ref));
  if (census_ != nullptr) {
    // And those that captures handed back: the caller frees them all alike.
    for (Record* record : census_->take_returned()) records.push_back(RecordRef::adopt(record));
  }
  for (Record* record : to_free_) records.push_back(RecordRef::adopt(record));
  to_free_.clear();
  by_expiry_.clear();
  slots_.clear();
  bytes_ = 0;
  sums_ = DigestSums();
  return records;
}

void KvMap::collect_due(std::int64_t now_ms, std::size_t max_keys,
                        std::vector<const Record*>& out) const {
  std::size_t taken = 0;
  for (auto it = by_expiry_.begin(); it != by_expiry_.end() && taken < max_keys; ++it, ++taken) {
    if ((*it)->expiry_ms() > now_ms) break;
    out.push_back(*it);
  }
}

void KvMap::advance_epoch() const {
  if (epoch_ != UINT32_MAX) {
    ++epoch_;
    return;
  }
  // Once every 2^32 captures: a record stamped with an epoch long gone must
  // not look new when the counter comes round to it again, so every record
  // in the map is stamped 0, an epoch the counter never takes.
  for (const Slot& slot : slots_) slot.ref->set_map_epoch(0);
  epoch_ = 1;
}

std::size_t KvMap::parked_for_testing() const {
  return census_ == nullptr ? 0 : census_->parked();
}

void KvMap::set_writer_frees(bool on) {
  writer_frees_ = on;
  if (census_ != nullptr) census_->set_writer_frees(on);
}

std::size_t KvMap::free_returned(std::size_t max) {
  if (census_ == nullptr) return 0;
  // Takes the census's lock only to empty it: then up to `max` at a time
  // from the writer's own list, with no lock (an apply frees one or two).
  if (to_free_.empty() && census_->returned() != 0) to_free_ = census_->take_returned();
  for (std::size_t n = std::min(max, to_free_.size()); n > 0; --n) {
    to_free_.back()->release();
    to_free_.pop_back();
  }
  return returned();
}

std::size_t KvMap::returned() const {
  return census_ == nullptr ? 0 : to_free_.size() + census_->returned();
}

std::size_t KvMap::newest_graveyard_size_for_testing() const {
  const std::shared_ptr<Graveyard> grave = newest_grave_.lock();
  return grave == nullptr ? 0 : grave->size();
}

KvMap::Capture KvMap::capture(std::size_t list_at_once) const {
  Capture captured;
  std::lock_guard lock(capture_mu_);
  finish_pending_listing();  // one pending listing at a time
  if (census_ == nullptr) {
    census_ = std::make_shared<Census>();
    census_->set_writer_frees(writer_frees_);
  }
  graveyards_alive_ = true;
  std::shared_ptr<Graveyard> grave = newest_grave_.lock();
  if (grave == nullptr || !grave->empty()) {
    // A fresh graveyard, unless the newest holds nothing yet: sharing an
    // empty one costs nothing, sharing a full one would keep its records
    // alive as long as this capture.
    auto fresh = std::make_shared<Graveyard>(census_);
    if (grave != nullptr) grave->link_newer(fresh);
    newest_grave_ = fresh;
    grave = std::move(fresh);
  }
  advance_epoch();
  captured.keep_alive_ = std::move(grave);
  captured.size_ = slots_.size();
  auto listing = std::make_shared<Listing>();
  listing->epoch = epoch_;
  listing->records.reserve(slots_.size());
  listing->next = slots_.begin();
  if (slots_.empty() || slots_.size() <= list_at_once) {
    list_slots(*listing, SIZE_MAX);
  } else {
    listing->map = this;
    listing->next_slot = &*listing->next;
    pending_ = listing;
  }
  captured.listing_ = std::move(listing);
  return captured;
}

}  // namespace nodenomad::storage
