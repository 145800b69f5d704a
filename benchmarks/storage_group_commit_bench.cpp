// Durable writes with group commit: how many fsynced sets per second with
// many writes in flight, next to the raw fdatasync rate of the same disk
// measured in the same run (the ceiling one-write-per-fsync would have).
//
//   storage_group_commit_bench [--writes=300000] [--in-flight=256] [--threads=2]
//                              [--sync-seconds=2] [--keys=100000]
//                              [--value-bytes=100] [--dir=/tmp] [--quick]
//
// Each thread keeps in-flight/threads writes going: submit_all() starts its
// share and every completion submits the next write, so completions (which
// arrive only after the batch's fdatasync) pace the pipeline.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "nodenomad/storage/storage_engine.hpp"
#include "storage_bench_common.hpp"

namespace nodenomad::bench {
namespace {

// Small appends, each followed by fdatasync, through the same FileSystem
// the WAL uses.
void bench_raw_fdatasync(const std::string& dir, double seconds_wanted) {
  auto file = PosixFileSystem::instance().open_writable(join_path(dir, "fdatasync-probe"),
                                                        WriteMode::kTruncate);
  require(file.is_ok(), file.status().to_string());
  const std::string record(128, 'x');
  std::uint64_t syncs = 0;
  Stopwatch watch;
  while (watch.seconds() < seconds_wanted) {
    require((*file)->append(record).is_ok() && (*file)->sync().is_ok(), "append + fdatasync");
    ++syncs;
  }
  const double seconds = watch.seconds();
  fmt::print("{{\"bench\":\"storage_raw_fdatasync\",\"fsyncs_per_s\":{:.0f},\"append_bytes\":{},"
             "\"syncs\":{},\"seconds\":{:.3f}}}\n",
             syncs / seconds, record.size(), syncs, seconds);
}

struct Pipeline {
  StorageEngine& engine;
  std::uint64_t total_writes;
  std::uint64_t key_space;
  std::string value;
  // One completion callback per thread. They live here, not on the threads'
  // stacks, because a callback runs on whichever thread commits the batch
  // and may still be returning when its own thread sees the last answer.
  std::vector<std::function<void(WriteResult)>> on_done;
  std::mutex mu;
  std::condition_variable all_done;
  std::uint64_t completed = 0;  // guarded by mu
  std::uint64_t failed = 0;     // guarded by mu
};

// One thread's share: `window` writes in flight until `total` are done.
void run_share(Pipeline& p, std::uint64_t thread, std::uint64_t window, std::uint64_t total) {
  auto next_request = [&p, thread](std::uint64_t n) {
    return WriteRequest{KvCommandType::kSet, make_key((n * 7919 + thread) % p.key_space, 16),
                        p.value, {}};
  };
  auto submitted = std::make_shared<std::atomic<std::uint64_t>>(window);
  std::function<void(WriteResult)>& on_done = p.on_done[thread];
  on_done = [&p, &on_done, submitted, total, next_request](WriteResult result) {
    const std::uint64_t n = submitted->fetch_add(1);
    if (n < total) p.engine.submit(next_request(n), on_done);
    std::lock_guard lock(p.mu);
    ++p.completed;
    if (!result.ok()) ++p.failed;
    if (p.completed == p.total_writes) p.all_done.notify_all();
  };
  std::vector<WriteRequest> first;
  for (std::uint64_t n = 0; n < window; ++n) first.push_back(next_request(n));
  p.engine.submit_all(first, [&on_done](std::size_t, WriteResult r) { on_done(std::move(r)); });
  std::unique_lock lock(p.mu);
  p.all_done.wait(lock, [&] { return p.completed == p.total_writes; });
}

void bench_group_commit(const std::string& dir, std::uint64_t writes, std::uint64_t in_flight,
                        std::uint64_t threads, std::uint64_t key_space, std::size_t value_bytes) {
  StorageOptions options;
  options.dir = dir;
  options.sync_policy = SyncPolicy::kGroupCommit;
  auto opened = StorageEngine::open(options);
  require(opened.is_ok(), opened.status().to_string());
  StorageEngine& engine = **opened;
  Rng rng(7);
  const std::uint64_t per_thread = writes / threads;
  Pipeline p{engine, per_thread * threads, key_space, make_value(rng, value_bytes),
             std::vector<std::function<void(WriteResult)>>(threads), {}, {}, 0, 0};
  const StorageStats before = engine.stats();
  Stopwatch watch;
  std::vector<std::thread> workers;
  for (std::uint64_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] { run_share(p, t, in_flight / threads, per_thread); });
  }
  for (auto& w : workers) w.join();
  const double seconds = watch.seconds();
  const StorageStats after = engine.stats();
  const std::uint64_t done = per_thread * threads;
  require(p.failed == 0, "a durable write failed");
  const double fsyncs = static_cast<double>(after.wal_syncs - before.wal_syncs);
  fmt::print("{{\"bench\":\"storage_group_commit_set\",\"durable_ops_per_s\":{:.0f},"
             "\"fsyncs_per_s\":{:.0f},\"writes_per_fsync\":{:.1f},\"in_flight\":{},\"threads\":{},"
             "\"writes\":{},\"value_bytes\":{},\"seconds\":{:.3f}}}\n",
             done / seconds, fsyncs / seconds, done / fsyncs, in_flight, threads, done,
             value_bytes, seconds);
}

}  // namespace
}  // namespace nodenomad::bench

int main(int argc, char** argv) {
  using namespace nodenomad::bench;
  const Flags flags(argc, argv, {"dir", "in-flight", "keys", "sync-seconds", "threads", "value-bytes", "writes"});
  const std::uint64_t writes = flags.number("writes", 300'000, 20'000);
  const std::uint64_t in_flight = flags.number("in-flight", 256, 256);
  const std::uint64_t threads = flags.number("threads", 2, 2);
  const std::uint64_t sync_seconds = flags.number("sync-seconds", 2, 1);
  require(threads > 0 && in_flight >= threads && writes >= threads,
          "--threads > 0, --in-flight >= --threads, --writes >= --threads");
  const ScratchDir dir(flags.text("dir", "/tmp"), "nodenomad-storage-bench");
  bench_raw_fdatasync(dir.path(), static_cast<double>(sync_seconds));
  bench_group_commit(dir.path(), writes, in_flight, threads, flags.number("keys", 100'000, 10'000),
                     static_cast<std::size_t>(flags.number("value-bytes", 100, 100)));
  return 0;
}
