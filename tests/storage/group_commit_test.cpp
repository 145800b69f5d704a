// Group commit: batching, durability before the answer, bounded queues,
// asynchronous writes, and failure of everything queued.
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage_test::dump_engine;
using storage_test::open_or_fail;
using storage_test::test_options;
using testing::FaultInjectingFileSystem;
using testing::FaultOp;

// A FileSystem that forwards to another one, except that a WAL sync can be
// held at a gate: the test then knows a commit round is in its fsync and can
// queue writes behind it without sleeping.
class GatedFileSystem final : public FileSystemWrapper {
 public:
  explicit GatedFileSystem(FileSystem& inner) : FileSystemWrapper(inner) {}

  // The next sync of a WAL segment stops at the gate.
  void arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
  }
  void wait_until_held() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override {
    NN_ASSIGN_OR_RETURN(auto file, inner().open_writable(path, mode));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(*this, std::move(file)));
  }

 private:
  class File final : public WritableFileWrapper {
   public:
    File(GatedFileSystem& fs, std::unique_ptr<WritableFile> inner)
        : WritableFileWrapper(std::move(inner)), fs_(fs) {}
    Status sync() override {
      if (path().find("wal-") != std::string::npos) fs_.pass_gate();
      return WritableFileWrapper::sync();
    }

   private:
    GatedFileSystem& fs_;
  };

  void pass_gate() {
    std::unique_lock lock(mu_);
    if (!armed_) return;
    armed_ = false;
    held_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    held_ = false;
    released_ = false;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool held_ = false;
  bool released_ = false;
};

struct GatedFixture {
  FaultInjectingFileSystem disk;
  GatedFileSystem fs{disk};
  ManualClock clock;
  std::unique_ptr<StorageEngine> engine;

  explicit GatedFixture(std::size_t max_pending_writes = 65536) {
    StorageOptions options = test_options(fs, clock);
    options.sync_policy = SyncPolicy::kGroupCommit;
    options.max_pending_writes = max_pending_writes;
    engine = open_or_fail(options);
  }
};

WriteRequest set_request(std::string key, std::string value) {
  return WriteRequest{KvCommandType::kSet, std::move(key), std::move(value), {}};
}

TEST_CASE("writes that arrive during an fsync are committed by the next one",
          "[storage][group_commit]") {
  GatedFixture f;
  f.fs.arm();
  WriteResult first;
  std::thread leader([&] { first = f.engine->set("first", "v"); });
  f.fs.wait_until_held();  // the leader's round is inside its fsync
  const std::uint64_t syncs_before = f.disk.sync_count();

  std::mutex mu;
  std::vector<WriteResult> answers;
  bool answered_before_durable = false;
  for (int i = 0; i < 99; ++i) {
    f.engine->submit(set_request("k" + std::to_string(i), "v"), [&](WriteResult result) {
      std::lock_guard lock(mu);
      // Durable first: the batch's own fsync has happened by now.
      if (f.disk.sync_count() < syncs_before + 2) answered_before_durable = true;
      answers.push_back(std::move(result));
    });
  }
  {
    std::lock_guard lock(mu);
    CHECK(answers.empty());  // nothing is answered while the fsync is held
  }
  CHECK(f.engine->get("k0").status().is(StatusCode::kNotFound));  // nor visible
  f.fs.release();
  leader.join();  // the blocking writer led the next round too: no one else could
  REQUIRE(first.ok());
  REQUIRE(answers.size() == 99);
  for (const WriteResult& r : answers) CHECK(r.ok());
  CHECK_FALSE(answered_before_durable);
  CHECK(f.disk.sync_count() - syncs_before == 2);  // one fsync for all 99
  CHECK(f.engine->get("k98").is_ok());
}

TEST_CASE("blocking writers on many threads all commit, each version once",
          "[storage][group_commit]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.sync_policy = SyncPolicy::kGroupCommit;
  auto engine = open_or_fail(options);
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 250;
  std::vector<std::vector<std::uint64_t>> versions(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        WriteResult r = engine->set("shared", "t" + std::to_string(t));
        if (r.ok()) versions[t].push_back(r.version);
        (void)engine->set("own" + std::to_string(t), std::to_string(i));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::uint64_t> all;
  for (const auto& v : versions) {
    CHECK(v.size() == kWritesPerThread);
    CHECK(std::is_sorted(v.begin(), v.end()));  // each writer sees its own writes in order
    all.insert(v.begin(), v.end());
  }
  CHECK(all.size() == kThreads * kWritesPerThread);
  CHECK(*all.rbegin() == kThreads * kWritesPerThread);
  const StorageStats stats = engine->stats();
  CHECK(stats.writes_committed == 2 * kThreads * kWritesPerThread);
  CHECK(stats.last_applied == LogIndex(2 * kThreads * kWritesPerThread));
  const auto expected = dump_engine(*engine);
  engine.reset();
  fs.crash();
  CHECK(dump_engine(*open_or_fail(options)) == expected);
}

TEST_CASE("one thread keeps hundreds of writes in flight with submit_all",
          "[storage][group_commit]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.sync_policy = SyncPolicy::kGroupCommit;
  auto engine = open_or_fail(options);
  constexpr std::size_t kInFlight = 256;
  constexpr std::size_t kTotal = 5000;
  std::size_t submitted = 0;
  std::size_t done = 0;
  std::size_t failures = 0;
  // Each completion submits the next write: a pipeline of kInFlight writes.
  std::function<void(WriteResult)> on_done = [&](WriteResult r) {
    ++done;
    if (!r.ok()) ++failures;
    if (submitted < kTotal) {
      ++submitted;
      engine->submit(set_request("k" + std::to_string(submitted % 300), "v"), on_done);
    }
  };
  std::vector<WriteRequest> first;
  for (std::size_t i = 0; i < kInFlight; ++i) {
    first.push_back(set_request("k" + std::to_string(i), "v"));
  }
  submitted = kInFlight;
  const std::uint64_t syncs_before = fs.sync_count();
  engine->submit_all(first, [&](std::size_t, WriteResult r) { on_done(std::move(r)); });
  // The calling thread was lent to the engine until the pipeline drained.
  CHECK(done == kTotal);
  CHECK(failures == 0);
  const std::uint64_t syncs = fs.sync_count() - syncs_before;
  CAPTURE(syncs, engine->stats().batches_committed);
  CHECK(syncs <= kTotal / kInFlight + 2);
}

TEST_CASE("automatic snapshots keep the WAL bounded while a pipeline keeps the queue busy",
          "[storage][group_commit][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.sync_policy = SyncPolicy::kGroupCommit;
  options.max_wal_bytes = 16u << 10;
  auto engine = open_or_fail(options);
  constexpr std::size_t kInFlight = 64;
  constexpr std::size_t kTotal = 6000;
  std::size_t submitted = kInFlight;
  std::size_t done = 0;
  std::size_t failures = 0;
  std::uint64_t largest_wal_bytes = 0;
  std::function<void(WriteResult)> on_done = [&](WriteResult r) {
    ++done;
    if (!r.ok()) ++failures;
    largest_wal_bytes = std::max(largest_wal_bytes, engine->stats().wal_bytes);
    if (submitted < kTotal) {
      ++submitted;
      engine->submit(set_request("k" + std::to_string(submitted % 97), std::string(30, 'v')),
                     on_done);
    }
  };
  std::vector<WriteRequest> first;
  for (std::size_t i = 0; i < kInFlight; ++i) {
    first.push_back(set_request("k" + std::to_string(i), "v"));
  }
  engine->submit_all(first, [&](std::size_t, WriteResult r) { on_done(std::move(r)); });
  CHECK(done == kTotal);
  CHECK(failures == 0);
  // Snapshots were taken during the pipeline, not after it: the WAL never
  // grew far past its bound (one round's worth of writes at most).
  CHECK(engine->stats().snapshots_written >= 10);
  CHECK(largest_wal_bytes < options.max_wal_bytes + kInFlight * 200);
  const auto expected = dump_engine(*engine);
  engine.reset();
  fs.crash();
  CHECK(dump_engine(*open_or_fail(options)) == expected);
}

TEST_CASE("a full queue answers kBusy and logs nothing", "[storage][group_commit]") {
  GatedFixture f(/*max_pending_writes=*/4);
  f.fs.arm();
  std::thread leader([&] { REQUIRE(f.engine->set("first", "v").ok()); });
  f.fs.wait_until_held();
  std::vector<WriteResult> answers;
  std::mutex mu;
  auto record = [&](WriteResult r) {
    std::lock_guard lock(mu);
    answers.push_back(std::move(r));
  };
  for (int i = 0; i < 4; ++i) f.engine->submit(set_request("q" + std::to_string(i), "v"), record);
  WriteResult busy;
  f.engine->submit(set_request("over", "v"), [&](WriteResult r) { busy = std::move(r); });
  CHECK(busy.status.is(StatusCode::kBusy));
  CHECK_THAT(std::string(busy.status.message()), Catch::Contains("max_pending_writes"));
  f.fs.release();
  leader.join();
  REQUIRE(answers.size() == 4);
  for (const auto& r : answers) CHECK(r.ok());
  CHECK(f.engine->get("over").status().is(StatusCode::kNotFound));
  CHECK(f.engine->last_applied_index() == LogIndex(5));
}

TEST_CASE("a failed fsync fails the batch and everything queued behind it",
          "[storage][group_commit]") {
  GatedFixture f;
  f.fs.arm();
  WriteResult first;
  std::thread leader([&] { first = f.engine->set("first", "v"); });
  f.fs.wait_until_held();
  std::vector<WriteResult> answers;
  std::mutex mu;
  for (int i = 0; i < 10; ++i) {
    f.engine->submit(set_request("q" + std::to_string(i), "v"), [&](WriteResult r) {
      std::lock_guard lock(mu);
      answers.push_back(std::move(r));
    });
  }
  f.disk.fail_next(FaultOp::kSync, "wal-");  // the held fsync will fail
  f.fs.release();
  leader.join();
  CHECK(first.status.is(StatusCode::kFailed));
  CHECK_THAT(std::string(first.status.message()), Catch::Contains("may or may not be durable"));
  REQUIRE(answers.size() == 10);
  for (const auto& r : answers) {
    CHECK(r.status.is(StatusCode::kFailed));
    CHECK_THAT(std::string(r.status.message()), Catch::Contains("not applied"));
  }
  CHECK(f.engine->stats().keys == 0);
  CHECK(f.engine->set("after", "v").status.is(StatusCode::kFailed));
}

}  // namespace
}  // namespace nodenomad
