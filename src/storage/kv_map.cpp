#include "storage/kv_map.hpp"

namespace nodenomad::storage {

void KvMap::index_added(const Record& record) {
  bytes_ += record.footprint();
  if (record.has_expiry()) by_expiry_.insert(&record);
}

void KvMap::index_removed(const Record& record) {
  bytes_ -= record.footprint();
  if (record.has_expiry()) {
    const std::size_t erased = by_expiry_.erase(&record);
    NN_ASSERT(erased == 1, "a record with an expiry was missing from the expiry index");
  }
}

void KvMap::put(const Spot& spot, RecordRef record) {
  NN_ASSERT(record && record->key() == spot.key_.key, "put of a record at another key's spot");
  // Old out before new in: the expiry index compares (expiry, key), so an
  // old and a new record with the same expiry are "equal" there.
  if (spot.found_) {
    index_removed(*spot.it_->ref);
    index_added(*record);
    spot.it_->ref = std::move(record);  // the old record dies here unless a snapshot holds it
    return;
  }
  index_added(*record);
  slots_.insert(Slot{std::move(record), spot.key_.hash});
}

bool KvMap::erase(const Spot& spot) {
  if (!spot.found_) return false;
  index_removed(*spot.it_->ref);
  slots_.erase(spot.it_);
  return true;
}

void KvMap::clear() {
  by_expiry_.clear();
  slots_.clear();
  bytes_ = 0;
}

void KvMap::collect_due(std::int64_t now_ms, std::size_t max_keys,
                        std::vector<const Record*>& out) const {
  std::size_t taken = 0;
  for (auto it = by_expiry_.begin(); it != by_expiry_.end() && taken < max_keys; ++it, ++taken) {
    if ((*it)->expiry_ms() > now_ms) break;
    out.push_back(*it);
  }
}

std::vector<RecordRef> KvMap::capture() const {
  std::vector<RecordRef> refs;
  refs.reserve(slots_.size());
  for (const Slot& slot : slots_) refs.push_back(slot.ref);
  return refs;
}

}  // namespace nodenomad::storage
