// Record: one key's current value, immutable once built, reference counted.
//
// Why immutable: a snapshot (for the snapshot file, for Raft, for a
// migration stream, for a digest) is a capture of the KvMap: a list of
// pointers to the records that were current when it was taken. A write never
// changes a record; it builds a new one and swaps it into the map, and the
// map keeps the old one alive for as long as a capture may read it
// (kv_map.hpp: graveyards), so the capture keeps seeing it while writes go
// on, without copying any key or value.
//
// Memory layout: one allocation per record, the fixed fields followed by the
// key bytes and then the value bytes.
//
//   +------+-----------+----------------+-----------+---------+-----------+-------------+-----+-------+
//   | refs | key_bytes | value_bytes:31 | map_epoch | version | expiry_ms | digest_term | key | value |
//   | u32  | u32       | has_expiry:1   | u32       | u64     | i64       | u64         |     |       |
//   +------+-----------+----------------+-----------+---------+-----------+-------------+-----+-------+
//
// digest_term is the record's term in its shard digest bucket's sum
// (digest_term.hpp), computed once when the record is built, so that the map
// can add it when the record enters and subtract it when it leaves without
// reading the value again (kv_map.hpp, "Digest").
//
// Thread safety: the fields are written only by create(), except map_epoch,
// which belongs to the KvMap holding the record and is read and written only
// by that map (under the engine's state lock); after create() any thread may
// read the others. The count is atomic, so references may be dropped on any
// thread (a capture dies on a migration or digest thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <new>
#include <string_view>
#include <utility>

#include "nodenomad/assert.hpp"
#include "storage/digest_term.hpp"

namespace nodenomad::storage {

class Record {
 public:
  // A record with one reference, owned by the caller (adopt it in a RecordRef).
  static Record* create(std::string_view key, std::string_view value, std::uint64_t version,
                        bool has_expiry, std::int64_t expiry_ms) {
    void* memory = ::operator new(sizeof(Record) + key.size() + value.size());
    auto* record = new (memory) Record(key, value, version, has_expiry, expiry_ms);
    return record;
  }

  std::string_view key() const { return {data(), key_bytes_}; }
  std::string_view value() const { return {data() + key_bytes_, value_bytes_}; }
  std::uint64_t version() const { return version_; }
  bool has_expiry() const { return has_expiry_ != 0; }
  std::int64_t expiry_ms() const { return expiry_ms_; }
  // The record's term in its digest bucket's sum (digest_term.hpp).
  std::uint64_t digest_term() const { return digest_term_; }
  // Expired at `now_ms`: an expiry at or before now hides the key.
  bool expired_at(std::int64_t now_ms) const { return has_expiry() && expiry_ms_ <= now_ms; }
  // Bytes this record accounts for in the engine's statistics.
  std::size_t footprint() const { return sizeof(Record) + key_bytes_ + value_bytes_; }

  // The capture epoch of the map holding this record when it was put there
  // (kv_map.hpp). Touched only by that map, which says when.
  std::uint32_t map_epoch() const { return map_epoch_; }
  void set_map_epoch(std::uint32_t epoch) const { map_epoch_ = epoch; }

  void add_ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  std::uint32_t refs_for_testing() const { return refs_.load(std::memory_order_relaxed); }
  void release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      this->~Record();
      ::operator delete(this);
    }
  }

  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;

 private:
  // Values are far below this (every path that builds a record bounds them by
  // the 64 MiB record limit); the top bit of the length word is has_expiry.
  static constexpr std::size_t kMaxValueBytes = (std::size_t{1} << 31) - 1;

  Record(std::string_view key, std::string_view value, std::uint64_t version, bool has_expiry,
         std::int64_t expiry_ms)
      : key_bytes_(static_cast<std::uint32_t>(key.size())),
        value_bytes_(static_cast<std::uint32_t>(value.size())),
        has_expiry_(has_expiry ? 1 : 0),
        version_(version),
        expiry_ms_(has_expiry ? expiry_ms : 0),
        digest_term_(storage::digest_term(key_hash_of(key), value, version, has_expiry, expiry_ms)) {
    NN_ASSERT(key.size() <= UINT32_MAX && value.size() <= kMaxValueBytes, "record too large");
    char* out = const_cast<char*>(data());
    if (!key.empty()) std::char_traits<char>::copy(out, key.data(), key.size());
    if (!value.empty()) std::char_traits<char>::copy(out + key.size(), value.data(), value.size());
  }
  ~Record() = default;

  const char* data() const { return reinterpret_cast<const char*>(this + 1); }

  std::atomic<std::uint32_t> refs_{1};
  std::uint32_t key_bytes_;
  std::uint32_t value_bytes_ : 31;
  std::uint32_t has_expiry_ : 1;
  // Not part of the record's value: a separate memory location from the
  // fields above, so that the map may stamp it while other threads read them.
  mutable std::uint32_t map_epoch_ = 0;
  std::uint64_t version_;
  std::int64_t expiry_ms_;
  std::uint64_t digest_term_;
};

static_assert(sizeof(Record) == 40, "the record header is drawn as 40 bytes");

// An owning reference to a Record (an intrusive shared pointer).
class RecordRef {
 public:
  RecordRef() = default;
  // Takes over the reference `record` carries (from Record::create).
  static RecordRef adopt(Record* record) { return RecordRef(record); }

  RecordRef(const RecordRef& other) : record_(other.record_) {
    if (record_ != nullptr) record_->add_ref();
  }
  RecordRef(RecordRef&& other) noexcept : record_(std::exchange(other.record_, nullptr)) {}
  // Gives up the reference without dropping it: the caller now owns it.
  Record* detach() { return std::exchange(record_, nullptr); }
  RecordRef& operator=(RecordRef other) noexcept {
    std::swap(record_, other.record_);
    return *this;
  }
  ~RecordRef() {
    if (record_ != nullptr) record_->release();
  }

  const Record* get() const { return record_; }
  const Record* operator->() const { return record_; }
  const Record& operator*() const { return *record_; }
  explicit operator bool() const { return record_ != nullptr; }

 private:
  explicit RecordRef(Record* record) : record_(record) {}
  Record* record_ = nullptr;
};

}  // namespace nodenomad::storage
