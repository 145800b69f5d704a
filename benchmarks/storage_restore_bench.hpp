// Restore cost on the thread that feeds the sink (a node's event loop in a
// shard migration): a replicated engine with a directory restores a snapshot
// stream of --restore-keys keys of --restore-value-bytes, handed over in
// chunks of --restore-chunk-bytes (MIGRATION_CHUNK_SIZE, 1 MiB), then
// finish(). Part of storage_recovery_bench (--only=restore runs just this).
//
// The chunks are made first (from an in-memory engine written in random key
// order, as a replica builds its state) and held in memory, so the timed
// loop is only write_chunk() + finish(). Printed per StorageOptions::
// restore_writer_thread setting ("thread": on, "inline": off):
//   caller_cpu_s    the calling thread's CPU for all write_chunk() calls
//   finish_ms       finish(): the last writes, the final fsync, the rename
//                   and the state swap (wall time: the loop's stall)
//   total_s         wall time of the whole restore
//   process_cpu_s   every thread of the process (the writer's included)
//   caller_mb_per_cpu_s  stream MB per caller CPU second
#pragma once

#include <time.h>

#include "nodenomad/storage/command.hpp"
#include "nodenomad/storage/storage_engine.hpp"
#include "storage_bench_common.hpp"

namespace nodenomad::bench {

struct RestoreShape {
  std::uint64_t keys = 0;
  std::size_t key_bytes = 16;
  std::size_t value_bytes = 0;
  std::size_t chunk_bytes = 1u << 20;
};

inline double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The snapshot stream of a replicated in-memory engine holding `shape`, in
// chunks; the engine is gone when this returns.
inline std::vector<std::string> restore_stream(const RestoreShape& shape, LogIndex& index) {
  StorageOptions options;
  options.mode = StorageMode::kReplicated;
  auto opened = StorageEngine::open(options);
  require(opened.is_ok(), opened.status().to_string());
  auto engine = std::move(opened).value();
  Rng rng(11);
  std::string command;
  std::uint64_t applied = 0;
  for (std::uint32_t i : shuffled(shape.keys, rng)) {
    const std::string key = make_key(i, shape.key_bytes);
    const std::string value = make_value(rng, shape.value_bytes);
    KvCommand set;
    set.issued_at = WallTime{std::chrono::milliseconds{1'700'000'000'000}};
    set.key = key;
    set.value = value;
    command.clear();
    encode_kv_command(set, command);
    require(engine->apply(LogIndex(++applied), command).is_ok(), "apply");
  }
  auto source = std::move(engine->open_snapshot()).value();
  index = source->index();
  std::vector<std::string> chunks;
  for (;;) {
    Result<std::string> chunk = source->next_chunk(shape.chunk_bytes);
    require(chunk.is_ok(), "next_chunk");
    if (chunk->empty()) return chunks;
    chunks.push_back(std::move(*chunk));
  }
}

inline void bench_restore_into(const std::string& dir, const std::vector<std::string>& chunks,
                               LogIndex index, const RestoreShape& shape, bool writer_thread) {
  StorageOptions options;
  options.mode = StorageMode::kReplicated;
  options.dir = dir;
  options.restore_writer_thread = writer_thread;
  auto opened = StorageEngine::open(options);
  require(opened.is_ok(), opened.status().to_string());
  auto engine = std::move(opened).value();
  std::uint64_t stream_bytes = 0;
  for (const std::string& chunk : chunks) stream_bytes += chunk.size();

  const double process_cpu_start = process_cpu_seconds();
  Stopwatch whole;
  auto sink = engine->begin_restore(index);
  require(sink.is_ok(), sink.status().to_string());
  for (const std::string& chunk : chunks) {
    const Status written = (*sink)->write_chunk(chunk);
    require(written.is_ok(), written.to_string());
  }
  const double caller_cpu = whole.cpu_seconds();
  Stopwatch finishing;
  const Status finished = (*sink)->finish();
  require(finished.is_ok(), finished.to_string());
  const double finish_seconds = finishing.seconds();
  const double total_seconds = whole.seconds();
  const double process_cpu = process_cpu_seconds() - process_cpu_start;
  require(engine->stats().keys == shape.keys, "the restore holds every key");
  JsonLine("storage_restore")
      .add("writer", writer_thread ? "thread" : "inline")
      .add("keys", shape.keys)
      .add("value_bytes", static_cast<std::uint64_t>(shape.value_bytes))
      .add("stream_bytes", stream_bytes)
      .add("chunks", static_cast<std::uint64_t>(chunks.size()))
      .add("caller_cpu_s", caller_cpu)
      .add("finish_ms", finish_seconds * 1e3)
      .add("total_s", total_seconds)
      .add("process_cpu_s", process_cpu)
      .add("caller_mb_per_cpu_s", static_cast<double>(stream_bytes) / caller_cpu / 1e6)
      .add("keys_per_caller_cpu_s", static_cast<double>(shape.keys) / caller_cpu)
      .print();
  engine.reset();  // frees the restored state before the next run builds one
}

// Both writer settings, each into a fresh directory under `parent`.
inline void bench_restore(const std::string& parent, const RestoreShape& shape) {
  LogIndex index;
  const std::vector<std::string> chunks = restore_stream(shape, index);
  for (bool writer_thread : {true, false}) {
    const ScratchDir dir(parent, "nodenomad-restore-bench");
    bench_restore_into(dir.path(), chunks, index, shape, writer_thread);
  }
}

}  // namespace nodenomad::bench
