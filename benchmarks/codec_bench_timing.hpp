// codec_bench's timed loops, shared by its codec comparison
// (codec_bench.cpp) and its compression figures (codec_bench_compress.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "bench_common.hpp"
#include "nodenomad/transport.hpp"

namespace nodenomad::codec_bench {

// Keeps the decoded values observable, so the compiler cannot drop the work.
inline volatile std::size_t g_sink = 0;

struct LoopTime {
  double wall_ns = 0;  // per call
  double cpu_ns = 0;   // per call, this thread's CPU time
};

// Runs `op` in doubling batches until `min_seconds` have passed (at most
// about twice that).
template <typename Op>
LoopTime time_calls(double min_seconds, Op&& op) {
  op();  // warm-up: first-touch of buffers and allocator pools
  std::uint64_t calls = 0;
  std::uint64_t batch = 1;
  const bench::Stopwatch watch;
  for (;;) {
    for (std::uint64_t i = 0; i < batch; ++i) op();
    calls += batch;
    const double elapsed = watch.seconds();
    if (elapsed >= min_seconds) {
      return {elapsed * 1e9 / static_cast<double>(calls),
              watch.cpu_seconds() * 1e9 / static_cast<double>(calls)};
    }
    batch *= 2;
  }
}

// What a decoded envelope holds, kept in g_sink so the decode is not dropped.
inline std::size_t decoded_size(const Envelope& e) {
  return e.message.entries.size() + e.message.snapshot.data.size() + e.payload.size();
}

// Without compression: what compares the codecs, not zstd.
inline constexpr EnvelopeEncodeOptions kUncompressed{.compress_snapshot_chunks = false};

}  // namespace nodenomad::codec_bench
