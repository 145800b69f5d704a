// FileLogStore under threads: group commit, and order and durability with
// appenders, syncers, readers and a compactor running at once.
//
// Catch2 assertions are not thread-safe, so worker threads record problems
// in a Problems list and the test thread checks it after joining.
#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "file_log_store_test_support.hpp"
#include "gated_file_system.hpp"

namespace nodenomad::log_store_test {
namespace {

using namespace std::chrono_literals;
using testing::FaultInjectingFileSystem;

constexpr auto kDeadline = 20s;

class Problems {
 public:
  void add(std::string problem) {
    std::lock_guard lock(mu_);
    if (problems_.size() < kMaxKept) problems_.push_back(std::move(problem));
  }
  std::vector<std::string> all() const {
    std::lock_guard lock(mu_);
    return problems_;
  }

 private:
  static constexpr std::size_t kMaxKept = 20;
  mutable std::mutex mu_;
  std::vector<std::string> problems_;
};

// Opens the gate when the test leaves early, so that threads blocked at it
// can finish and their futures can be destroyed.
struct OpenGateOnExit {
  GatedFileSystem& fs;
  ~OpenGateOnExit() { fs.open_gate(); }
};

// Polls `done` until it holds or the deadline passes; says what it waited for.
template <typename Predicate>
void wait_until(const char* what, Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    INFO("waited " << kDeadline.count() << " s for " << what);
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::yield();
  }
}

// Appenders (each picking the next index under one test mutex, so the log
// stays contiguous), two syncers, a reader and a compactor, all at once on
// one store. Problems are recorded, never asserted, off the test thread.
struct MixedWorkload {
  static constexpr int kAppenders = 3;
  // Appenders go on past kMinBatchesPerAppender until the reader and the
  // compactor have had their turns too, whatever the scheduler did; at most
  // kMaxBatchesPerAppender.
  static constexpr int kMinBatchesPerAppender = 200;
  static constexpr int kMaxBatchesPerAppender = 200'000;
  static constexpr std::uint64_t kMinReads = 50;
  static constexpr std::uint64_t kMinCompactedIndex = 300;

  MixedWorkload(FileLogStore& s, std::uint64_t seed_value) : store(s), seed(seed_value) {}

  void run() {
    std::vector<std::thread> threads;
    for (int id = 0; id < kAppenders; ++id) threads.emplace_back([this, id] { appender(id); });
    threads.emplace_back([this] { syncer(); });
    threads.emplace_back([this] { syncer(); });
    threads.emplace_back([this] { reader(); });
    threads.emplace_back([this] { compactor(); });
    for (std::thread& t : threads) t.join();
  }

  bool others_had_their_turn() const {
    return reads >= kMinReads && compacted_to >= kMinCompactedIndex;
  }

  // Appends a batch of 1-3 entries at the end; returns its last index.
  LogIndex append_batch(int id, Rng& rng) {
    std::lock_guard lock(order_mu);
    const std::uint64_t next = store.last_index().value() + 1;
    std::vector<Entry> batch;
    for (std::uint64_t i = next; i < next + rng.uniform_in(1, 3); ++i) {
      batch.push_back(make_entry(i, 1, fmt::format("appender-{}-index-{}", id, i)));
      expected[i] = batch.back().data;
    }
    const Status st = store.append(batch);
    if (!st.is_ok()) problems.add("append: " + st.to_string());
    return batch.back().index;
  }

  void appender(int id) {
    Rng rng(seed + static_cast<std::uint64_t>(id));
    for (int b = 0; b < kMaxBatchesPerAppender; ++b) {
      if (b >= kMinBatchesPerAppender && others_had_their_turn()) break;
      const LogIndex mine = append_batch(id, rng);
      if (!rng.chance(0.3)) continue;
      auto durable = store.sync();  // must cover this thread's own appends
      if (!durable.is_ok() || *durable < mine) {
        problems.add(fmt::format("appender {} synced index {} but sync answered {}", id,
                                 mine.value(), durable.is_ok() ? durable->value() : 0));
      }
    }
    --appenders_left;
  }

  void syncer() {
    LogIndex previous;
    while (appenders_left > 0) {
      auto durable = store.sync();
      if (!durable.is_ok() || *durable < previous) {
        problems.add(fmt::format("sync went from {} to {}", previous.value(),
                                 durable.is_ok() ? durable->value() : 0));
        return;
      }
      previous = *durable;
    }
  }

  void reader() {
    Rng rng(seed ^ 0x5eed);
    while (appenders_left > 0) {
      const std::uint64_t first = store.first_index().value();
      const std::uint64_t last = store.last_index().value();
      if (last < first) continue;
      const std::uint64_t lo = rng.uniform_in(first, last);
      const std::uint64_t hi = rng.uniform_in(lo, last) + 1;
      auto got = store.entries(LogIndex(lo), LogIndex(hi), rng.uniform(4096));
      ++reads;
      if (!got.is_ok()) {
        // Only a compaction that ran meanwhile may take entries away.
        if (!got.status().is(StatusCode::kNotFound) || store.first_index().value() <= lo) {
          problems.add("entries: " + got.status().to_string());
        }
        continue;
      }
      std::lock_guard lock(order_mu);
      for (const Entry& e : *got) {
        if (e.data != expected[e.index.value()]) {
          problems.add(fmt::format("entry {} read back as '{}'", e.index.value(), e.data));
        }
      }
    }
  }

  void compactor() {
    while (appenders_left > 0) {
      auto durable = store.sync();
      if (!durable.is_ok()) return;
      const LogIndex to(durable->value() / 2);
      if (to.value() <= compacted_to) continue;
      const Status st = store.compact(make_snapshot(to.value(), 1));
      if (!st.is_ok()) problems.add("compact: " + st.to_string());
      compacted_to = to.value();
    }
  }

  FileLogStore& store;
  const std::uint64_t seed;
  Problems problems;
  std::mutex order_mu;  // guards `expected` and the choice of the next index
  std::map<std::uint64_t, std::string> expected;
  std::atomic<int> appenders_left{kAppenders};
  std::atomic<std::uint64_t> compacted_to{0};
  std::atomic<std::uint64_t> reads{0};
};

}  // namespace

TEST_CASE("FileLogStore: sync callers arriving during an fsync share the next one",
          "[file_log_store][concurrency]") {
  FaultInjectingFileSystem disk;
  GatedFileSystem fs(disk);
  auto store = open_store(fs);
  REQUIRE(store->append(make_entries(1, 1, 1)).is_ok());
  fs.close_gate();
  std::future<Result<LogIndex>> first, second, third;
  OpenGateOnExit guard{fs};
  first = std::async(std::launch::async, [&] { return store->sync(); });
  REQUIRE(fs.wait_blocked(1, kDeadline));  // its fsync is in flight now

  // The fsync holds no lock: appends and reads go on meanwhile.
  auto appended =
      std::async(std::launch::async, [&] { return store->append(make_entries(2, 3, 1)); });
  REQUIRE(appended.wait_for(kDeadline) == std::future_status::ready);
  REQUIRE(appended.get().is_ok());
  auto read = std::async(std::launch::async,
                         [&] { return store->entries(LogIndex(1), LogIndex(4), UINT64_MAX); });
  REQUIRE(read.wait_for(kDeadline) == std::future_status::ready);
  CHECK(read.get().value() == make_entries(1, 3, 1));

  second = std::async(std::launch::async, [&] { return store->sync(); });
  third = std::async(std::launch::async, [&] { return store->sync(); });
  wait_until("two sync() callers to wait behind the fsync in flight",
             [&] { return store->stats().waiting_sync_callers == 2; });
  fs.open_gate();
  CHECK(first.get().value() == LogIndex(1));   // its batch held entry 1 only
  CHECK(second.get().value() == LogIndex(3));  // the next fsync covered both waiters
  CHECK(third.get().value() == LogIndex(3));
  CHECK(fs.syncs_passed() == 2);
  CHECK(store->stats().fsyncs == 2);
  CHECK(store->stats().sync_calls == 3);
}

TEST_CASE("FileLogStore: appenders, syncers, readers and a compactor keep order and durability",
          "[file_log_store][concurrency]") {
  FaultInjectingFileSystem fs;
  FileLogStoreOptions options;
  options.segment_bytes = 4096;
  options.max_unwritten_bytes = 8192;
  auto store = open_store(fs, options);
  MixedWorkload workload(*store, test_seed("FileLogStore concurrency", 77));
  workload.run();
  for (const std::string& p : workload.problems.all()) FAIL_CHECK(p);

  const LogIndex last = store->last_index();
  CHECK(last.value() == workload.expected.size());
  CHECK(sync_ok(*store) == last);
  INFO("reads " << workload.reads << ", compacted to " << workload.compacted_to);
  REQUIRE(workload.others_had_their_turn());
  CHECK(store->stats().segments_deleted > 0);
  store.reset();
  fs.crash(testing::CrashOptions{.tear_unsynced_tail = true});
  store = open_store(fs, options);
  CHECK(store->last_index() == last);
  CHECK(store->first_index().value() == workload.compacted_to + 1);
  auto all = store->entries(store->first_index(), last.next(), UINT64_MAX);
  REQUIRE(all.is_ok());
  for (const Entry& e : *all) CHECK(e.data == workload.expected[e.index.value()]);
}

}  // namespace nodenomad::log_store_test
