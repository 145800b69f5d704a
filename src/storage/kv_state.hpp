// KvState: the deterministic heart of the StorageEngine. It applies decoded
// commands to a KvMap and answers WriteResults, reading nothing but the
// command (no clock, no randomness, no I/O), so every replica that applies
// the same log reaches the same state.
//
// Versions: every write of a key gives it the previous version + 1. A key
// that is absent (never written, removed, or expired) starts above the
// engine-wide version floor: the highest version ever removed or expired.
// That keeps "a delete and re-create starts again above the old one" without
// keeping a tombstone per deleted key; the floor is one number, persisted in
// snapshots and rebuilt by WAL replay.
//
// Expiry: a record whose expiry is at or before the command's issued_at is
// treated as absent by that command (compare-and-set sees version 0, a
// remove deletes nothing), exactly as a read at that time would.
//
// Thread safety: none; the engine serializes apply() and guards reads.
#pragma once

#include <cstdint>
#include <string_view>

#include "nodenomad/storage/command.hpp"
#include "nodenomad/types.hpp"
#include "storage/kv_map.hpp"

namespace nodenomad::storage {

struct KvLimits {
  std::size_t max_key_bytes = 1024;
  std::size_t max_value_bytes = 1u << 20;
};

// kInvalidArgument naming the limit and the size, or OK.
Status check_kv_limits(const KvLimits& limits, std::string_view key, std::string_view value);

inline std::int64_t to_ms(WallTime t) { return t.time_since_epoch().count(); }
inline WallTime from_ms(std::int64_t ms) { return WallTime{std::chrono::milliseconds{ms}}; }

class KvState {
 public:
  explicit KvState(KvLimits limits) : limits_(limits) {}

  // Applies one command. A refused command (a limit, a lost compare-and-set)
  // changes nothing and says why in the result's status.
  WriteResult apply(const KvCommand& command);

  Status check_limits(std::string_view key, std::string_view value) const {
    return check_kv_limits(limits_, key, value);
  }

  // The record under `key` if it is visible at `now_ms` (not expired).
  const Record* find_live(std::string_view key, std::int64_t now_ms) const {
    const Record* record = map_.find(key);
    return record != nullptr && !record->expired_at(now_ms) ? record : nullptr;
  }

  KvMap& map() { return map_; }
  const KvMap& map() const { return map_; }
  const KvLimits& limits() const { return limits_; }

  std::uint64_t version_floor() const { return version_floor_; }
  void set_version_floor(std::uint64_t floor) { version_floor_ = floor; }
  LogIndex last_applied() const { return last_applied_; }
  void set_last_applied(LogIndex index) { last_applied_ = index; }

 private:
  WriteResult apply_set(const KvCommand& command);
  WriteResult apply_remove(const KvCommand& command);
  WriteResult apply_expire(const KvCommand& command);
  void raise_floor(std::uint64_t version) {
    if (version > version_floor_) version_floor_ = version;
  }

  KvLimits limits_;
  KvMap map_;
  std::uint64_t version_floor_ = 0;
  LogIndex last_applied_;
};

}  // namespace nodenomad::storage
