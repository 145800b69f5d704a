// Crash-point enumeration: a seeded workload (appends, conflicting appends,
// truncations, hard states, compactions, snapshots, syncs) on tiny segments,
// with the disk dying after k mutating operations for every k, with and
// without torn tails. After the crash the store must reopen and hold exactly
// the state after some prefix of the record-level steps that were issued, no
// shorter than what the last successful sync() covered: durable data is all
// there and identical, nothing later is half there (an unsynced batch may
// survive entry by entry, in order), and the hard state is the last durable
// one or newer. The recovered store must then go on working.
#include <algorithm>
#include <catch2/catch.hpp>

#include "file_log_store_test_support.hpp"

namespace nodenomad::log_store_test {
namespace {

using testing::CrashOptions;
using testing::FaultInjectingFileSystem;

constexpr int kWorkloadOperations = 70;
constexpr int kSeedsPerRun = 20;

FileLogStoreOptions crash_options() {
  FileLogStoreOptions options;
  options.segment_bytes = FileLogStoreOptions::kMinSegmentBytes;
  options.max_unwritten_bytes = 300;  // appends sometimes write through
  return options;
}

// The states the store may legally recover to: states.front() is what the
// last successful sync() covered, each later one adds one record-level step.
struct Trace {
  std::vector<ModelLog> states;
  bool stopped_by_error = false;
};

class Workload {
 public:
  Workload(LogStore& store, std::uint64_t seed) : store_(store), rng_(seed) {
    trace_.states.push_back(model_);
  }

  // Runs until the operations are done or one fails (the disk died).
  Trace run() {
    for (int op = 0; op < kWorkloadOperations && !trace_.stopped_by_error; ++op) step();
    return std::move(trace_);
  }

 private:
  void issued() { trace_.states.push_back(model_); }
  void check(const Status& st) { trace_.stopped_by_error = trace_.stopped_by_error || !st.is_ok(); }

  void step() {
    const std::uint64_t dice = rng_.uniform(100);
    const std::uint64_t first = model_.first().value();
    const std::uint64_t last = model_.last().value();
    if (dice < 40) {
      const bool conflict = last >= first && rng_.chance(0.25);
      const std::uint64_t from = conflict ? rng_.uniform_in(first, last) : last + 1;
      if (conflict) ++term_;
      std::vector<Entry> batch;
      for (std::uint64_t i = from; i < from + rng_.uniform_in(1, 4); ++i) {
        batch.push_back(make_entry(i, term_, std::string(rng_.uniform_in(1, 60), 'a' + i % 26)));
        model_.append(batch.back());
        issued();
      }
      check(store_.append(batch));
    } else if (dice < 55) {
      model_.hard_state = HardState{Term(term_), NodeId(rng_.chance(0.5) ? "node-2" : ""),
                                    LogIndex(rng_.uniform_in(model_.snapshot.index.value(), last))};
      issued();
      check(store_.set_hard_state(model_.hard_state));
    } else if (dice < 60) {
      const LogIndex from(rng_.uniform_in(first, last + 1));
      if (from.value() <= last) {
        model_.truncate(from);
        issued();
      }
      check(store_.truncate_suffix(from));
    } else if (dice < 70) {
      const LogIndex at(rng_.uniform_in(first - 1, last));
      const SnapshotMeta meta = make_snapshot(at.value(), model_.term_at(at).value());
      model_.compact(meta);
      issued();
      check(store_.compact(meta));
    } else if (dice < 73) {
      const SnapshotMeta meta = make_snapshot(last + rng_.uniform(4), ++term_);
      model_.install(meta);
      issued();
      check(store_.install_snapshot(meta));
    } else {
      auto durable = store_.sync();
      check(durable.status());
      if (durable.is_ok()) {
        REQUIRE(*durable == model_.last());
        trace_.states = {model_};
      }
    }
  }

  LogStore& store_;
  Rng rng_;
  ModelLog model_;
  std::uint64_t term_ = 1;
  Trace trace_;
};

std::uint64_t full_run_op_count(std::uint64_t seed) {
  FaultInjectingFileSystem fs(seed);
  auto store = open_store(fs, crash_options());
  const Trace trace = Workload(*store, seed).run();
  REQUIRE_FALSE(trace.stopped_by_error);
  return fs.mutating_op_count();
}

// One crash point: the disk dies after `k` mutating operations.
void crash_at(std::uint64_t seed, std::uint64_t k, bool tear) {
  FaultInjectingFileSystem fs(seed ^ (k << 1) ^ (tear ? 1 : 0));
  fs.die_after_ops(k);
  Trace trace{{ModelLog{}}, true};
  {
    auto opened = FileLogStore::open(fs, kDir, crash_options());
    if (opened.is_ok()) trace = Workload(**opened, seed).run();
  }
  fs.crash(CrashOptions{.tear_unsynced_tail = tear});
  INFO("seed " << seed << ", crash after " << k << " operations, torn tails " << tear);
  auto reopened = FileLogStore::open(fs, kDir, crash_options());
  INFO(reopened.status().to_string());
  REQUIRE(reopened.is_ok());
  const ModelLog recovered = observe(**reopened);
  const bool legal =
      std::find(trace.states.begin(), trace.states.end(), recovered) != trace.states.end();
  INFO("recovered: " << recovered.describe());
  INFO("last durable: " << trace.states.front().describe());
  INFO("last issued: " << trace.states.back().describe());
  REQUIRE(legal);

  // Recovery itself left a durable state: a second crash right away changes
  // nothing.
  reopened = Result<std::unique_ptr<FileLogStore>>(Status::aborted("closed"));
  fs.crash(CrashOptions{.tear_unsynced_tail = tear});
  reopened = FileLogStore::open(fs, kDir, crash_options());
  INFO("after a second crash: " << reopened.status().to_string());
  REQUIRE(reopened.is_ok());
  REQUIRE(observe(**reopened) == recovered);

  // The recovered store goes on: one more entry, synced, survives a crash.
  LogStore& store = **reopened;
  const Entry next =
      make_entry(recovered.last().value() + 1, recovered.term_at(recovered.last()).value() + 1);
  REQUIRE(store.append(std::vector<Entry>{next}).is_ok());
  REQUIRE(sync_ok(store) == next.index);
  reopened = Result<std::unique_ptr<FileLogStore>>(Status::aborted("closed"));
  fs.crash(CrashOptions{.tear_unsynced_tail = tear});
  auto again = open_store(fs, crash_options());
  ModelLog expected = recovered;
  expected.append(next);
  REQUIRE(observe(*again) == expected);
}

}  // namespace

TEST_CASE("FileLogStore: a crash at every mutating operation recovers a durable prefix",
          "[file_log_store][crash]") {
  const std::uint64_t base_seed = test_seed("FileLogStore crash points", 1234);
  LogCapture quiet;  // torn tails are logged on almost every reopen
  std::uint64_t crash_points = 0;
  for (std::uint64_t seed = base_seed; seed < base_seed + kSeedsPerRun; ++seed) {
    const std::uint64_t ops = full_run_op_count(seed);
    for (const bool tear : {false, true}) {
      for (std::uint64_t k = 0; k <= ops; ++k) {
        crash_at(seed, k, tear);
        ++crash_points;
      }
    }
  }
  std::printf("FileLogStore crash points checked: %llu\n",
              static_cast<unsigned long long>(crash_points));
  CHECK(crash_points > 300);
}

}  // namespace nodenomad::log_store_test
