// codec_bench's figures for the adaptive compression path
// (`codec_compress_adaptive` per repetition, `codec_compress_adaptive_summary`
// the medians): zstd level 1 through a ChunkCompressionHistory, as
// AsioTransport encodes for each peer, once the history has settled. The
// stream's chunks are encoded again and again as one endless transfer (the
// last chunk's `last` flag cleared, so the history never forgets it): on
// data that does not compress, one chunk in 16 is tried. Each repetition
// also times plain level 1 on the same chunks, so the two are compared under
// the same load. Figures are per chunk and per MiB of chunk data, in
// microseconds of this thread's CPU.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.hpp"
#include "codec_bench_timing.hpp"
#include "nodenomad/transport.hpp"
#include "snapshot_stream_data.hpp"
#include "transport/chunk_compression_history.hpp"

namespace nodenomad::codec_bench {

struct AdaptiveFigures {
  std::uint64_t chunks = 0;     // per pass over the stream
  std::uint64_t raw_bytes = 0;  // chunk data per pass
  ChunkCompressionCounts counts;  // over the warm-up and the timed passes
  LoopTime adaptive;  // per pass
  LoopTime plain;     // per pass, level 1 without a history

  double us_per_chunk(const LoopTime& t) const {
    return t.cpu_ns / static_cast<double>(chunks) / 1e3;
  }
  double us_per_mib(const LoopTime& t) const {
    return t.cpu_ns / (static_cast<double>(raw_bytes) / (1 << 20)) / 1e3;
  }
  double tried_share() const {
    return static_cast<double>(counts.attempts) /
           static_cast<double>(counts.attempts + counts.skipped);
  }
};

inline AdaptiveFigures measure_adaptive(std::vector<Envelope> chunks, double seconds) {
  for (Envelope& e : chunks) e.message.snapshot.last = false;
  const EnvelopeEncodeOptions level_1{.zstd_level = 1};
  AdaptiveFigures f;
  f.chunks = chunks.size();
  for (const Envelope& e : chunks) f.raw_bytes += e.message.snapshot.data.size();
  ChunkCompressionHistory history;
  std::string out;
  f.adaptive = time_calls(seconds, [&] {
    for (const Envelope& e : chunks) {
      out.clear();
      (void)encode_envelope_with_history(e, out, level_1, history);
      g_sink = out.size();
    }
  });
  f.counts = history.counts();
  f.plain = time_calls(seconds, [&] {
    for (const Envelope& e : chunks) {
      out.clear();
      encode_envelope_to(e, out, level_1);
      g_sink = out.size();
    }
  });
  return f;
}

inline void print_adaptive(std::string_view line, bench::ValueKind kind,
                           const AdaptiveFigures& f) {
  bench::JsonLine(line)
      .add("values", bench::value_kind_name(kind))
      .add("setting", "zstd_1_adaptive")
      .add("chunks_per_pass", f.chunks)
      .add("chunk_bytes", f.raw_bytes / f.chunks)
      .add("attempts", f.counts.attempts)
      .add("skipped", f.counts.skipped)
      .add("compressed", f.counts.compressed)
      .add("tried_share", f.tried_share())
      .add("adaptive_us_per_chunk_cpu", f.us_per_chunk(f.adaptive))
      .add("adaptive_us_per_mib_cpu", f.us_per_mib(f.adaptive))
      .add("plain_zstd_1_us_per_mib_cpu", f.us_per_mib(f.plain))
      .add("speedup", f.plain.cpu_ns / f.adaptive.cpu_ns)
      .add("load_avg_1m", bench::load_average_1min())
      .print();
}

// The median repetition by the adaptive path's CPU time, with the plain
// path's median alongside.
inline AdaptiveFigures median_adaptive(std::vector<AdaptiveFigures> runs) {
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a.plain.cpu_ns < b.plain.cpu_ns;
  });
  const LoopTime plain = runs[runs.size() / 2].plain;
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a.adaptive.cpu_ns < b.adaptive.cpu_ns;
  });
  AdaptiveFigures median = runs[runs.size() / 2];
  median.plain = plain;
  return median;
}

}  // namespace nodenomad::codec_bench
