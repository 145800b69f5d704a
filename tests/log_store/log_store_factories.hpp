// The stores the shared contract suite runs against. Each factory owns
// whatever its store needs and hands out a LogStore&.
#pragma once

#include <memory>

#include "log_store_test_support.hpp"
#include "nodenomad/file_log_store.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"

namespace nodenomad::log_store_test {

inline const std::string kStoreDir = "/data/group-1/log";

struct MemoryStoreFactory {
  MemoryLogStore store;
  LogStore& get() { return store; }
};

// A FileLogStore with default options on the in-memory faulty disk.
struct FileStoreFactory {
  testing::FaultInjectingFileSystem fs;
  std::unique_ptr<FileLogStore> store;
  FileStoreFactory() {
    auto opened = FileLogStore::open(fs, kStoreDir);
    REQUIRE(opened.is_ok());
    store = std::move(opened).value();
  }
  LogStore& get() { return *store; }
};

// Tiny segments and no write buffering: every record boundary case of
// rotation, and every mutation writing through at once.
struct SmallSegmentFileStoreFactory {
  testing::FaultInjectingFileSystem fs;
  std::unique_ptr<FileLogStore> store;
  SmallSegmentFileStoreFactory() {
    FileLogStoreOptions options;
    options.segment_bytes = FileLogStoreOptions::kMinSegmentBytes;
    options.max_unwritten_bytes = 1;
    auto opened = FileLogStore::open(fs, kStoreDir, options);
    REQUIRE(opened.is_ok());
    store = std::move(opened).value();
  }
  LogStore& get() { return *store; }
};

// A FileLogStore that, after every successful mutation, syncs, loses power
// and is opened again: the contract must hold across restarts, exactly.
class ReopeningFileLogStore final : public LogStore {
 public:
  ReopeningFileLogStore() { reopen(); }

  LogIndex first_index() const override { return store_->first_index(); }
  LogIndex last_index() const override { return store_->last_index(); }
  Result<Term> term_at(LogIndex index) const override { return store_->term_at(index); }
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                     std::uint64_t max_bytes) const override {
    return store_->entries(lo, hi, max_bytes);
  }
  HardState hard_state() const override { return store_->hard_state(); }
  SnapshotMeta snapshot_meta() const override { return store_->snapshot_meta(); }

  Status append(std::span<const Entry> entries) override {
    return restart_after(store_->append(entries));
  }
  Status truncate_suffix(LogIndex from) override {
    return restart_after(store_->truncate_suffix(from));
  }
  Status set_hard_state(const HardState& state) override {
    return restart_after(store_->set_hard_state(state));
  }
  Status compact(const SnapshotMeta& meta) override { return restart_after(store_->compact(meta)); }
  Status install_snapshot(const SnapshotMeta& meta) override {
    return restart_after(store_->install_snapshot(meta));
  }
  Result<LogIndex> sync() override { return store_->sync(); }

 private:
  Status restart_after(Status status) {
    if (!status.is_ok()) return status;
    const ModelLog before = observe(*store_);
    auto durable = store_->sync();
    REQUIRE(durable.is_ok());
    REQUIRE(*durable == store_->last_index());
    store_.reset();
    fs_.crash(testing::CrashOptions{.tear_unsynced_tail = true});
    reopen();
    INFO("before restart: " << before.describe());
    REQUIRE(observe(*store_) == before);
    return status;
  }
  void reopen() {
    FileLogStoreOptions options;
    options.segment_bytes = 512;
    auto opened = FileLogStore::open(fs_, kStoreDir, options);
    REQUIRE(opened.is_ok());
    store_ = std::move(opened).value();
  }

  testing::FaultInjectingFileSystem fs_;
  std::unique_ptr<FileLogStore> store_;
};

struct ReopeningFileStoreFactory {
  ReopeningFileLogStore store;
  LogStore& get() { return store; }
};

}  // namespace nodenomad::log_store_test
