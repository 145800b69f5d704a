// Helpers shared by the storage tests: seeds, engine options on the
// fault-injecting file system, a reference model of the key-value semantics,
// and an exact dump of an engine's state (through its snapshot stream).
#pragma once

#include "support/test_seed.hpp"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "nodenomad/clock.hpp"
#include "nodenomad/storage/storage_engine.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"
#include "storage/snapshot.hpp"

namespace nodenomad::storage_test {

// The seed of a randomized test: NODENOMAD_SEED if set, else `fallback`.
// Printed so that a failure can be replayed with NODENOMAD_SEED=<seed>.
inline std::uint64_t test_seed(std::uint64_t fallback) {
  return test_support::test_seed("storage test", fallback);
}

inline WallTime ms_time(std::int64_t ms) { return WallTime{std::chrono::milliseconds{ms}}; }

inline StorageOptions test_options(FileSystem& fs, Clock& clock, std::string dir = "/db") {
  StorageOptions options;
  options.dir = std::move(dir);
  options.file_system = &fs;
  options.clock = &clock;
  options.sync_policy = SyncPolicy::kEveryWrite;
  return options;
}

inline std::unique_ptr<StorageEngine> open_or_fail(const StorageOptions& options) {
  auto opened = StorageEngine::open(options);
  INFO(opened.status().to_string());
  REQUIRE(opened.is_ok());
  return std::move(opened).value();
}

// One key as the engine stores it (expired or not).
struct ModelEntry {
  std::string value;
  std::uint64_t version = 0;
  std::optional<std::int64_t> expiry_ms;
  bool operator==(const ModelEntry&) const = default;
};

struct ModelState {
  std::map<std::string, ModelEntry> entries;
  std::uint64_t version_floor = 0;
  bool operator==(const ModelState&) const = default;
};

// The engine's semantics, written the simple way, to compare against.
struct ModelResult {
  StatusCode code = StatusCode::kOk;
  std::uint64_t version = 0;
  std::uint64_t current_version = 0;
  bool deleted = false;
};

class Model {
 public:
  ModelResult set(std::string_view key, std::string_view value, std::int64_t now_ms,
                  std::optional<std::int64_t> expiry_ms, std::optional<std::uint64_t> if_version) {
    const ModelEntry* live = find_live(key, now_ms);
    const std::uint64_t current = live != nullptr ? live->version : 0;
    if (if_version && *if_version != current) return {StatusCode::kVersionMismatch, 0, current};
    std::uint64_t base = state_.version_floor;
    if (live != nullptr) {
      base = live->version;
    } else if (auto it = state_.entries.find(std::string(key)); it != state_.entries.end()) {
      base = std::max(base, it->second.version);
    }
    state_.entries[std::string(key)] = ModelEntry{std::string(value), base + 1, expiry_ms};
    return {StatusCode::kOk, base + 1};
  }

  ModelResult remove(std::string_view key, std::int64_t now_ms,
                     std::optional<std::uint64_t> if_version) {
    const ModelEntry* live = find_live(key, now_ms);
    const std::uint64_t current = live != nullptr ? live->version : 0;
    if (if_version && *if_version != current) return {StatusCode::kVersionMismatch, 0, current};
    if (auto it = state_.entries.find(std::string(key)); it != state_.entries.end()) {
      state_.version_floor = std::max(state_.version_floor, it->second.version);
      state_.entries.erase(it);
    }
    return {StatusCode::kOk, current, 0, live != nullptr};
  }

  // Removes up to max_keys keys due at now_ms, earliest expiry first; the
  // number removed.
  std::size_t expire(std::int64_t now_ms, std::size_t max_keys) {
    std::vector<std::pair<std::int64_t, std::string>> due;
    for (const auto& [key, entry] : state_.entries) {
      if (entry.expiry_ms && *entry.expiry_ms <= now_ms) due.emplace_back(*entry.expiry_ms, key);
    }
    std::sort(due.begin(), due.end());
    if (due.size() > max_keys) due.resize(max_keys);
    for (const auto& [expiry, key] : due) {
      state_.version_floor = std::max(state_.version_floor, state_.entries[key].version);
      state_.entries.erase(key);
    }
    return due.size();
  }

  const ModelEntry* find_live(std::string_view key, std::int64_t now_ms) const {
    auto it = state_.entries.find(std::string(key));
    if (it == state_.entries.end()) return nullptr;
    if (it->second.expiry_ms && *it->second.expiry_ms <= now_ms) return nullptr;
    return &it->second;
  }

  const ModelState& state() const { return state_; }

 private:
  ModelState state_;
};

// Everything in `source`'s snapshot, exactly, with its index.
inline ModelState dump_snapshot(SnapshotSource& source, LogIndex* index = nullptr,
                                std::size_t chunk_bytes = 4096) {
  storage::SnapshotParser parser(storage::KvLimits{1u << 20, 64u << 20}, "test dump");
  while (true) {
    auto chunk = source.next_chunk(chunk_bytes);
    REQUIRE(chunk.is_ok());
    if (chunk->empty()) break;
    const Status fed = parser.feed(*chunk);
    INFO(fed.to_string());
    REQUIRE(fed.is_ok());
  }
  auto state = parser.finish();
  INFO(state.status().to_string());
  REQUIRE(state.is_ok());
  if (index != nullptr) *index = (*state)->last_applied();
  ModelState out;
  out.version_floor = (*state)->version_floor();
  const storage::KvMap::Capture captured = (*state)->map().capture(SIZE_MAX);
  for (const storage::Record* r : captured.records()) {
    out.entries[std::string(r->key())] =
        ModelEntry{std::string(r->value()), r->version(),
                   r->has_expiry() ? std::optional<std::int64_t>(r->expiry_ms()) : std::nullopt};
  }
  return out;
}

inline ModelState dump_engine(StorageEngine& engine, LogIndex* index = nullptr) {
  auto source = engine.open_snapshot();
  REQUIRE(source.is_ok());
  return dump_snapshot(**source, index);
}

// A Clock that counts its readings, to prove a path never reads it.
class CountingClock final : public Clock {
 public:
  MonoTime monotonic_now() const override {
    ++readings_;
    return inner_.monotonic_now();
  }
  WallTime wall_now() const override {
    ++readings_;
    return inner_.wall_now();
  }
  ManualClock& inner() { return inner_; }
  std::uint64_t readings() const { return readings_; }

 private:
  ManualClock inner_;
  mutable std::atomic<std::uint64_t> readings_{0};
};

}  // namespace nodenomad::storage_test
