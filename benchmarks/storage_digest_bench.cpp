// Shard digests and bucket repair (shard_digest.hpp), one thread, in memory:
// how long StorageEngine::capture() holds things up, how fast a capture's
// digest is recomputed from its records (scan_digest; the digest a node
// compares is the engine's kept sums, timed too), and what a repair of a few buckets costs (the export on one
// replica, replace_buckets() on the other's apply thread).
//
//   storage_digest_bench [--keys=1000000] [--value-bytes=100]
//                        [--big-keys=100000] [--big-value-bytes=1024]
//                        [--key-bytes=16] [--repair-buckets=4] [--runs=3] [--quick]
//
// Two states are measured: --keys keys of --value-bytes, then --big-keys
// keys of --big-value-bytes. Prints one JSON line per figure; each timed
// figure is the median of --runs runs, with the thread's CPU time next to
// the wall time (the machine is shared).
#include <algorithm>
#include <atomic>
#include <thread>

#include "nodenomad/storage/storage_engine.hpp"
#include "storage_bench_common.hpp"

namespace nodenomad::bench {
namespace {

const WallTime kNow{std::chrono::milliseconds{1'700'000'000'000}};

struct Shape {
  std::uint64_t keys;
  std::size_t key_bytes;
  std::size_t value_bytes;
};

struct Timing {
  double seconds = 0;
  double cpu_seconds = 0;
};

// The median wall time of `runs` runs of `body`, with that run's CPU time.
template <typename Body>
Timing median_of(std::uint64_t runs, Body&& body) {
  std::vector<Timing> timings;
  for (std::uint64_t i = 0; i < runs; ++i) {
    Stopwatch watch;
    body();
    timings.push_back({watch.seconds(), watch.cpu_seconds()});
  }
  std::sort(timings.begin(), timings.end(),
            [](const Timing& a, const Timing& b) { return a.seconds < b.seconds; });
  return timings[timings.size() / 2];
}

// A replicated engine holding shape.keys keys, written in a random order
// through apply (as a replica builds its state).
std::unique_ptr<StorageEngine> build_state(const Shape& shape, Rng& rng) {
  StorageOptions options;
  options.mode = StorageMode::kReplicated;
  auto opened = StorageEngine::open(options);
  require(opened.is_ok(), opened.status().to_string());
  auto engine = std::move(opened).value();
  std::string command;
  std::uint64_t index = 0;
  for (std::uint32_t i : shuffled(shape.keys, rng)) {
    const std::string key = make_key(i, shape.key_bytes);
    const std::string value = make_value(rng, shape.value_bytes);
    KvCommand set;
    set.issued_at = kNow;
    set.key = key;
    set.value = value;
    command.clear();
    encode_kv_command(set, command);
    require(engine->apply(LogIndex(++index), command).is_ok(), "apply");
  }
  return engine;
}

// How long a capture holds up the writes: a writer thread overwrites random
// keys through apply() in a loop (as a shard's apply thread does) while this
// thread takes a capture and lists it (its first digest). The longest apply
// while the capture is taken and listed, against the longest in as many
// applies before it. Before captures were listed in steps, the first was the
// whole O(keys) copy of the record pointers (10-16 ms at a million keys).
void bench_capture_stall(StorageEngine& engine, const Shape& shape, Rng& rng) {
  enum Phase : int { kWarm, kBefore, kDuring, kStop };
  std::atomic<int> phase{kWarm};
  std::atomic<std::uint64_t> applied{0};
  double max_before_ms = 0;
  double max_during_ms = 0;
  std::uint64_t writes_before = 0;
  std::uint64_t writes_during = 0;
  std::uint64_t index = engine.last_applied_index().value();
  std::vector<std::string> commands;
  for (int i = 0; i < 4096; ++i) {  // overwrites of existing keys
    const std::string key = make_key(rng.uniform(shape.keys), shape.key_bytes);
    const std::string value = make_value(rng, shape.value_bytes);
    KvCommand set;  // views key and value
    set.issued_at = kNow;
    set.key = key;
    set.value = value;
    commands.push_back(encode_kv_command(set));
  }
  std::thread writer([&] {
    for (std::size_t i = 0;; ++i) {
      const int at = phase.load(std::memory_order_acquire);
      if (at == kStop) break;
      const auto start = std::chrono::steady_clock::now();
      require(engine.apply(LogIndex(++index), commands[i % commands.size()]).is_ok(), "apply");
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (at == kBefore) {
        max_before_ms = std::max(max_before_ms, ms);
        ++writes_before;
      } else if (at == kDuring) {
        max_during_ms = std::max(max_during_ms, ms);
        ++writes_during;
      }
      applied.fetch_add(1, std::memory_order_release);
    }
  });
  const auto wait_applied = [&](std::uint64_t n) {
    const std::uint64_t target = applied.load() + n;
    while (applied.load(std::memory_order_acquire) < target) std::this_thread::yield();
  };
  wait_applied(10'000);
  phase.store(kBefore, std::memory_order_release);
  wait_applied(50'000);
  phase.store(kDuring, std::memory_order_release);
  Stopwatch watch;
  auto taken = engine.capture();
  require(taken.is_ok(), "capture");
  const ShardDigest digest = (*taken)->scan_digest();  // lists and reads every record
  const double during_ms = watch.seconds() * 1e3;
  phase.store(kStop, std::memory_order_release);
  writer.join();
  require(digest.keys == shape.keys,
          fmt::format("the digest covers every key: {} of {}", digest.keys, shape.keys));
  JsonLine("storage_capture_write_stall")
      .add("keys", shape.keys)
      .add("value_bytes", static_cast<std::uint64_t>(shape.value_bytes))
      .add("capture_and_digest_ms", during_ms)
      .add("writes_during", writes_during)
      .add("write_max_ms_during", max_during_ms)
      .add("writes_before", writes_before)
      .add("write_max_ms_before", max_before_ms)
      .print();
}

void bench_shape(const Shape& shape, std::uint64_t repair_buckets, std::uint64_t runs, Rng& rng) {
  auto engine = build_state(shape, rng);
  const double state_bytes =
      static_cast<double>(shape.keys * (shape.key_bytes + shape.value_bytes));

  // capture() itself (what the caller's thread, usually the one applying
  // writes, pays), then the listing of its records, which the first digest
  // does (kv_map.hpp: a large map is listed in steps by the first reader).
  // Each run's capture is dropped before the next is taken: a pending one
  // would be listed by the next capture().
  std::shared_ptr<const StateCapture> captured;
  ShardDigest digest;
  std::vector<Timing> first_digests;
  const Timing capture = median_of(runs, [&] {
    captured.reset();
    auto taken = engine->capture();
    require(taken.is_ok(), "capture");
    captured = std::move(taken).value();
  });
  const Timing listing_and_digest = median_of(runs, [&] {
    auto taken = engine->capture();
    require(taken.is_ok(), "capture");
    captured = std::move(taken).value();
    Stopwatch watch;
    digest = captured->scan_digest();
    first_digests.push_back({watch.seconds(), watch.cpu_seconds()});
  });
  require(captured->keys() == shape.keys, "the capture holds every key");
  const Timing digesting = median_of(runs, [&] { digest = captured->scan_digest(); });
  const double list_ms = std::max(0.0, (listing_and_digest.seconds - digesting.seconds) * 1e3);
  JsonLine("storage_capture")
      .add("keys", shape.keys)
      .add("value_bytes", static_cast<std::uint64_t>(shape.value_bytes))
      .add("ms", capture.seconds * 1e3)
      .add("cpu_ms", capture.cpu_seconds * 1e3)
      .add("list_ms", list_ms)
      .add("list_ns_per_key", list_ms * 1e6 / static_cast<double>(shape.keys))
      .print();

  require(digest.keys == shape.keys && digest.bytes == static_cast<std::uint64_t>(state_bytes),
          "the digest covers every key");
  // The digest a node compares: the sums the engine keeps, without a pass.
  ShardDigest kept;
  const Timing keeping = median_of(runs, [&] { kept = engine->digest(); });
  require(kept == digest, "the kept digest equals the one recomputed from the records");
  JsonLine("storage_digest_kept")
      .add("keys", shape.keys)
      .add("value_bytes", static_cast<std::uint64_t>(shape.value_bytes))
      .add("us", keeping.seconds * 1e6)
      .print();
  JsonLine("storage_digest")
      .add("keys", shape.keys)
      .add("key_bytes", static_cast<std::uint64_t>(shape.key_bytes))
      .add("value_bytes", static_cast<std::uint64_t>(shape.value_bytes))
      .add("mb_per_s", state_bytes / digesting.seconds / 1e6)
      .add("keys_per_s", static_cast<double>(shape.keys) / digesting.seconds)
      .add("mb_per_cpu_s", state_bytes / digesting.cpu_seconds / 1e6)
      .add("keys_per_cpu_s", static_cast<double>(shape.keys) / digesting.cpu_seconds)
      .add("ms", digesting.seconds * 1e3)
      .print();

  // A repair of the first few buckets. The export is replaced on the same
  // engine, at the index it was taken at: the same work as on a diverged
  // replica, and the state comes out the same.
  std::vector<std::uint32_t> buckets;
  for (std::uint32_t b = 0; b < repair_buckets && b < kDigestBuckets; ++b) buckets.push_back(b);
  std::vector<std::string> chunks;
  const Timing exporting = median_of(runs, [&] {
    auto exported = captured->export_buckets(buckets, 1u << 20);
    require(exported.is_ok(), exported.status().to_string());
    chunks = std::move(exported).value();
  });
  std::uint64_t export_bytes = 0;
  for (const std::string& chunk : chunks) export_bytes += chunk.size();
  JsonLine("storage_bucket_export")
      .add("keys", shape.keys)
      .add("buckets", static_cast<std::uint64_t>(buckets.size()))
      .add("export_bytes", export_bytes)
      .add("ms", exporting.seconds * 1e3)
      .add("cpu_ms", exporting.cpu_seconds * 1e3)
      .print();

  captured.reset();
  const Timing replacing = median_of(runs, [&] {
    const Status replaced = engine->replace_buckets(buckets, chunks);
    require(replaced.is_ok(), replaced.to_string());
  });
  {  // dropped before the next part: no capture alive there
    auto after = engine->capture();
    require(after.is_ok() && (*after)->digest() == digest,
            "a repair with the same records changes nothing");
  }
  JsonLine("storage_replace_buckets")
      .add("keys", shape.keys)
      .add("buckets", static_cast<std::uint64_t>(buckets.size()))
      .add("ms", replacing.seconds * 1e3)
      .add("cpu_ms", replacing.cpu_seconds * 1e3)
      .print();
  bench_capture_stall(*engine, shape, rng);  // last: it applies more writes
}

}  // namespace
}  // namespace nodenomad::bench

int main(int argc, char** argv) {
  using namespace nodenomad::bench;
  quiet_routine_logs();
  const Flags flags(argc, argv, {"big-keys", "big-value-bytes", "key-bytes", "keys",
                                 "repair-buckets", "runs", "value-bytes"});
  const std::size_t key_bytes = flags.number("key-bytes", 16, 16);
  const Shape small{flags.number("keys", 1'000'000, 50'000), key_bytes,
                    flags.number("value-bytes", 100, 100)};
  const Shape big{flags.number("big-keys", 100'000, 5'000), key_bytes,
                  flags.number("big-value-bytes", 1024, 1024)};
  const std::uint64_t repair_buckets = flags.number("repair-buckets", 4, 4);
  const std::uint64_t runs = std::max<std::uint64_t>(flags.number("runs", 3, 1), 1);
  require(small.keys > 0 && big.keys > 0 && key_bytes >= 8, "--keys > 0 and --key-bytes >= 8");
  JsonLine("storage_digest_machine").add("load_average_1min", load_average_1min()).print();
  nodenomad::Rng rng(42);
  bench_shape(small, repair_buckets, runs, rng);
  bench_shape(big, repair_buckets, runs, rng);
  return 0;
}
