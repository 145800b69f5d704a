// In-memory throughput of the StorageEngine, one thread: the apply path
// (replicated mode, no WAL), standalone sets with sync=kNone, and gets.
//
//   storage_ops_bench [--keys=1000000] [--gets=5000000] [--key-bytes=16]
//                     [--value-bytes=100] [--dir=/tmp] [--quick]
//
// Prints one JSON line per figure.
#include <algorithm>

#include "nodenomad/storage/storage_engine.hpp"
#include "storage_bench_common.hpp"

namespace nodenomad::bench {
namespace {

struct Sizes {
  std::uint64_t keys;
  std::uint64_t gets;
  std::size_t key_bytes;
  std::size_t value_bytes;
};

const WallTime kNow{std::chrono::milliseconds{1'700'000'000'000}};

std::unique_ptr<StorageEngine> open_engine(StorageOptions options) {
  auto opened = StorageEngine::open(std::move(options));
  require(opened.is_ok(), opened.status().to_string());
  return std::move(opened).value();
}

// Sets through StateMachine::apply (what a Raft replica runs): commands
// encoded beforehand, so the figure is decode + apply.
std::unique_ptr<StorageEngine> bench_apply(const Sizes& s, const std::vector<std::string>& keys,
                                           const std::string& value) {
  std::vector<std::string> commands;
  commands.reserve(keys.size());
  for (const std::string& key : keys) {
    KvCommand command;
    command.issued_at = kNow;
    command.key = key;
    command.value = value;
    commands.push_back(encode_kv_command(command));
  }
  StorageOptions options;
  options.mode = StorageMode::kReplicated;
  auto engine = open_engine(options);
  Stopwatch watch;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    auto response = engine->apply(LogIndex(i + 1), commands[i]);
    require(response.is_ok(), "apply");
  }
  const double seconds = watch.seconds();
  const double cpu = watch.cpu_seconds();
  fmt::print("{{\"bench\":\"storage_set_apply\",\"ops_per_s\":{:.0f},\"ops_per_cpu_s\":{:.0f},"
             "\"keys\":{},\"key_bytes\":{},\"value_bytes\":{},\"seconds\":{:.3f}}}\n",
             s.keys / seconds, s.keys / cpu, s.keys, s.key_bytes, s.value_bytes, seconds);
  return engine;
}

// Sets through the standalone write path with its WAL at sync=kNone.
void bench_standalone_set(const Sizes& s, const std::vector<std::string>& keys,
                          const std::string& value, const std::string& dir) {
  StorageOptions options;
  options.dir = dir;
  options.sync_policy = SyncPolicy::kNone;
  options.max_wal_bytes = 64ull << 30;  // no snapshot inside the measurement
  auto engine = open_engine(options);
  Stopwatch watch;
  for (const std::string& key : keys) require(engine->set(key, value).ok(), "set");
  const double seconds = watch.seconds();
  const double cpu = watch.cpu_seconds();
  fmt::print("{{\"bench\":\"storage_set_standalone_sync_none\",\"ops_per_s\":{:.0f},"
             "\"ops_per_cpu_s\":{:.0f},\"keys\":{},\"key_bytes\":{},\"value_bytes\":{},"
             "\"wal_bytes\":{},\"seconds\":{:.3f}}}\n",
             s.keys / seconds, s.keys / cpu, s.keys, s.key_bytes, s.value_bytes,
             engine->stats().wal_bytes, seconds);
}

// The latency of one random, dependent memory load over a buffer as large as
// the engine's records: the floor under a random get, which needs at least
// the record's cache line.
void probe_memory_latency(std::uint64_t bytes, Rng& rng) {
  const std::uint64_t lines = std::max<std::uint64_t>(bytes / 64, 2);
  std::vector<std::uint64_t> next(lines * 8);
  const std::vector<std::uint32_t> order = shuffled(lines, rng);
  for (std::uint64_t i = 0; i < lines; ++i) next[order[i] * 8] = order[(i + 1) % lines] * 8;
  constexpr std::uint64_t kSteps = 2'000'000;
  std::uint64_t at = 0;
  Stopwatch watch;
  for (std::uint64_t i = 0; i < kSteps; ++i) at = next[at];
  const double seconds = watch.seconds();
  require(at < next.size(), "probe");
  fmt::print("{{\"bench\":\"memory_random_load_latency\",\"ns\":{:.1f},\"ns_cpu\":{:.1f},"
             "\"buffer_bytes\":{}}}\n",
             seconds / kSteps * 1e9, watch.cpu_seconds() / kSteps * 1e9, lines * 64);
}

void bench_gets(const Sizes& s, StorageEngine& engine, const std::vector<std::string>& keys,
                Rng& rng) {
  // The keys to read, packed in the order they are read: a request's key is
  // in the cache when it reaches the engine, so the figure measures the
  // engine's lookups, not misses on the benchmark's own key strings.
  const std::vector<std::uint32_t> order = shuffled(keys.size(), rng);
  std::string packed;
  packed.reserve(keys.size() * s.key_bytes);
  for (std::uint32_t i : order) packed += keys[i];
  auto key_at = [&](std::uint64_t i) {
    return std::string_view(packed).substr((i % keys.size()) * s.key_bytes, s.key_bytes);
  };
  ReadResult out;
  std::uint64_t bytes = 0;
  Stopwatch watch;
  for (std::uint64_t i = 0; i < s.gets; ++i) {
    const Status found = engine.get_into(key_at(i), kNow, out);
    require(found.is_ok(), "get");
    bytes += out.value.size();
  }
  const double seconds = watch.seconds();
  const double cpu = watch.cpu_seconds();
  require(bytes == s.gets * s.value_bytes, "get read the wrong values");
  fmt::print("{{\"bench\":\"storage_get\",\"ops_per_s\":{:.0f},\"ops_per_cpu_s\":{:.0f},"
             "\"keys\":{},\"gets\":{},\"order\":\"random\",\"key_bytes\":{},\"value_bytes\":{},"
             "\"seconds\":{:.3f}}}\n",
             s.gets / seconds, s.gets / cpu, s.keys, s.gets, s.key_bytes, s.value_bytes, seconds);

  // Batched reads: the lookups of a group overlap their cache misses.
  constexpr std::size_t kBatch = 32;
  std::vector<std::string_view> batch_keys(kBatch);
  std::vector<ReadResult> batch_out(kBatch);
  bytes = 0;
  Stopwatch watch_batch;
  for (std::uint64_t i = 0; i < s.gets; i += kBatch) {
    for (std::size_t j = 0; j < kBatch; ++j) batch_keys[j] = key_at(i + j);
    require(engine.get_many(batch_keys, kNow, batch_out).is_ok(), "get_many");
    for (const ReadResult& r : batch_out) bytes += r.value.size();
  }
  const double seconds_batch = watch_batch.seconds();
  const double cpu_batch = watch_batch.cpu_seconds();
  const std::uint64_t batched_gets = (s.gets + kBatch - 1) / kBatch * kBatch;
  require(bytes == batched_gets * s.value_bytes, "get_many read the wrong values");
  fmt::print("{{\"bench\":\"storage_get_many\",\"ops_per_s\":{:.0f},\"ops_per_cpu_s\":{:.0f},"
             "\"keys\":{},\"gets\":{},\"batch\":{},\"order\":\"random\",\"seconds\":{:.3f}}}\n",
             batched_gets / seconds_batch, batched_gets / cpu_batch, s.keys, batched_gets, kBatch,
             seconds_batch);

  // The allocating form, for comparison: one std::string per read.
  const std::uint64_t allocating_gets = s.gets / 5;
  Stopwatch watch2;
  for (std::uint64_t i = 0; i < allocating_gets; ++i) {
    auto read = engine.get(key_at(i), kNow);
    require(read.is_ok(), "get");
  }
  const double seconds2 = watch2.seconds();
  fmt::print("{{\"bench\":\"storage_get_allocating\",\"ops_per_s\":{:.0f},\"keys\":{},\"gets\":{},"
             "\"seconds\":{:.3f}}}\n",
             allocating_gets / seconds2, s.keys, allocating_gets, seconds2);
}

}  // namespace
}  // namespace nodenomad::bench

int main(int argc, char** argv) {
  using namespace nodenomad::bench;
  const Flags flags(argc, argv, {"dir", "gets", "key-bytes", "keys", "value-bytes"});
  const Sizes sizes{flags.number("keys", 1'000'000, 100'000),
                    flags.number("gets", 5'000'000, 500'000),
                    static_cast<std::size_t>(flags.number("key-bytes", 16, 16)),
                    static_cast<std::size_t>(flags.number("value-bytes", 100, 100))};
  require(sizes.keys > 0 && sizes.key_bytes >= 2, "--keys > 0 and --key-bytes >= 2");
  const ScratchDir dir(flags.text("dir", "/tmp"), "nodenomad-storage-bench");
  nodenomad::Rng rng(42);
  std::vector<std::string> keys;
  keys.reserve(sizes.keys);
  for (std::uint32_t i : shuffled(sizes.keys, rng)) keys.push_back(make_key(i, sizes.key_bytes));
  const std::string value = make_value(rng, sizes.value_bytes);

  auto engine = bench_apply(sizes, keys, value);
  bench_gets(sizes, *engine, keys, rng);
  probe_memory_latency(engine->stats().bytes, rng);
  engine.reset();
  bench_standalone_set(sizes, keys, value, dir.path());
  return 0;
}
