// Recovery speed: write a large WAL with sync=kNone, close, reopen, and
// report how fast the reopen replayed it. Then restore speed: what a
// snapshot restore costs the thread that feeds it (storage_restore_bench.hpp).
//
//   storage_recovery_bench [--wal-bytes=1073741824] [--keys=1000000]
//                          [--key-bytes=16] [--value-bytes=100] [--dir=/tmp]
//                          [--restore-keys=1048576] [--restore-value-bytes=1024]
//                          [--restore-small-keys=1000000] [--restore-small-value-bytes=100]
//                          [--restore-chunk-bytes=1048576] [--only=recovery|restore] [--quick]
//
// The WAL was just written, so it is read from the page cache: the figure is
// the engine's replay speed (checksums, decoding, applying), not the disk's.
#include "nodenomad/storage/storage_engine.hpp"
#include "storage_bench_common.hpp"
#include "storage_restore_bench.hpp"

namespace nodenomad::bench {
namespace {

StorageOptions wal_options(const std::string& dir, std::uint64_t wal_bytes) {
  StorageOptions options;
  options.dir = dir;
  options.sync_policy = SyncPolicy::kNone;
  options.wal_buffer_bytes = 1u << 20;
  options.max_wal_bytes = 4 * wal_bytes + (1u << 20);  // no snapshot: all of it is replayed
  return options;
}

// Overwrites keys round-robin until the WAL holds `wal_bytes`; returns the
// number of writes.
std::uint64_t write_wal(const std::string& dir, std::uint64_t wal_bytes, std::uint64_t keys,
                        std::size_t key_bytes, std::size_t value_bytes) {
  auto opened = StorageEngine::open(wal_options(dir, wal_bytes));
  require(opened.is_ok(), opened.status().to_string());
  StorageEngine& engine = **opened;
  Rng rng(3);
  const std::string value = make_value(rng, value_bytes);
  std::vector<std::string> key_list;
  key_list.reserve(keys);
  for (std::uint32_t i : shuffled(keys, rng)) key_list.push_back(make_key(i, key_bytes));
  std::uint64_t writes = 0;
  Stopwatch watch;
  while (engine.stats().wal_bytes < wal_bytes) {
    for (std::uint64_t i = 0; i < 4096; ++i, ++writes) {
      require(engine.set(key_list[writes % keys], value).ok(), "set");
    }
  }
  const double seconds = watch.seconds();
  fmt::print("{{\"bench\":\"storage_wal_write_sync_none\",\"ops_per_s\":{:.0f},\"mb_per_s\":{:.1f},"
             "\"wal_bytes\":{},\"writes\":{},\"seconds\":{:.3f}}}\n",
             writes / seconds, engine.stats().wal_bytes / seconds / 1e6, engine.stats().wal_bytes,
             writes, seconds);
  return writes;
}

}  // namespace
}  // namespace nodenomad::bench

namespace nodenomad::bench {
namespace {

void run_recovery(const Flags& flags) {
  const std::uint64_t wal_bytes = flags.number("wal-bytes", 1ull << 30, 32ull << 20);
  const std::uint64_t keys = flags.number("keys", 1'000'000, 100'000);
  const auto key_bytes = static_cast<std::size_t>(flags.number("key-bytes", 16, 16));
  const auto value_bytes = static_cast<std::size_t>(flags.number("value-bytes", 100, 100));
  require(keys > 0 && key_bytes >= 2, "--keys > 0 and --key-bytes >= 2");
  const ScratchDir dir(flags.text("dir", "/tmp"), "nodenomad-storage-bench");
  const std::uint64_t writes = write_wal(dir.path(), wal_bytes, keys, key_bytes, value_bytes);

  Stopwatch watch;
  auto reopened = nodenomad::StorageEngine::open(wal_options(dir.path(), wal_bytes));
  const double seconds = watch.seconds();
  const double cpu = watch.cpu_seconds();
  require(reopened.is_ok(), reopened.status().to_string());
  const nodenomad::StorageStats stats = (*reopened)->stats();
  require(stats.last_applied.value() == writes, "the reopen did not replay every write");
  require(stats.keys == std::min(keys, writes), "the reopen lost keys");
  fmt::print("{{\"bench\":\"storage_recovery\",\"mb_per_s\":{:.1f},\"mb_per_cpu_s\":{:.1f},"
             "\"records_per_s\":{:.0f},\"wal_bytes\":{},\"records\":{},\"keys\":{},"
             "\"seconds\":{:.3f},\"page_cache\":\"warm\"}}\n",
             stats.wal_bytes / seconds / 1e6, stats.wal_bytes / cpu / 1e6, writes / seconds,
             stats.wal_bytes, writes, stats.keys, seconds);
}

void run_restore(const Flags& flags) {
  const std::string parent = flags.text("dir", "/tmp");
  const std::size_t chunk_bytes = flags.number("restore-chunk-bytes", 1u << 20, 1u << 20);
  require(chunk_bytes > 0, "--restore-chunk-bytes > 0");
  const RestoreShape big{flags.number("restore-keys", 1u << 20, 16'384), 16,
                         flags.number("restore-value-bytes", 1024, 1024), chunk_bytes};
  const RestoreShape small{flags.number("restore-small-keys", 1'000'000, 100'000), 16,
                           flags.number("restore-small-value-bytes", 100, 100), chunk_bytes};
  JsonLine("storage_restore_machine").add("load_average_1min", load_average_1min()).print();
  if (big.keys > 0) bench_restore(parent, big);
  if (small.keys > 0) bench_restore(parent, small);
}

}  // namespace
}  // namespace nodenomad::bench

int main(int argc, char** argv) {
  using namespace nodenomad::bench;
  quiet_routine_logs();
  const Flags flags(argc, argv,
                    {"dir", "key-bytes", "keys", "only", "restore-chunk-bytes", "restore-keys",
                     "restore-small-keys", "restore-small-value-bytes", "restore-value-bytes",
                     "value-bytes", "wal-bytes"});
  const std::string only = flags.text("only", "");
  require(only.empty() || only == "recovery" || only == "restore",
          "--only takes recovery or restore");
  if (only != "restore") run_recovery(flags);
  if (only != "recovery") run_restore(flags);
  return 0;
}
