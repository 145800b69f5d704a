// codec_bench's snapshot chunk compression figures (`codec_compress` per
// repetition, `codec_compress_summary` the medians): the snapshot stream of
// a StorageEngine (snapshot_stream_data.hpp), one envelope per 1 MiB chunk,
// encoded and decoded whole with compression off and at zstd levels -5, -1,
// 1 and 3. Sizes are the same in every repetition; speeds are MB of chunk
// data per second of this thread's CPU (and of wall time). Each repetition
// then measures the adaptive path (codec_bench_adaptive.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bench_common.hpp"
#include "codec_bench_adaptive.hpp"
#include "codec_bench_timing.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/transport.hpp"
#include "snapshot_stream_data.hpp"

namespace nodenomad::codec_bench {

using bench::JsonLine;

struct CompressSetting {
  std::string name;
  EnvelopeEncodeOptions options;
};

inline std::vector<CompressSetting> compress_settings() {
  std::vector<CompressSetting> settings = {{"off", kUncompressed}};
  for (const int level : {-5, -1, 1, 3})
    settings.push_back({fmt::format("zstd_{}", level), {.zstd_level = level}});
  return settings;
}

struct CompressFigures {
  std::uint64_t raw_bytes = 0;   // chunk data
  std::uint64_t wire_bytes = 0;  // encoded envelopes
  std::uint64_t compressed_chunks = 0;
  LoopTime encode;  // per stream
  LoopTime decode;
  double ratio() const { return static_cast<double>(raw_bytes) / static_cast<double>(wire_bytes); }
  double encode_mb_per_cpu_s() const {
    return static_cast<double>(raw_bytes) / encode.cpu_ns * 1e3;
  }
  double decode_mb_per_cpu_s() const {
    return static_cast<double>(raw_bytes) / decode.cpu_ns * 1e3;
  }
};

// Encodes and decodes every chunk of the stream, each loop timed whole.
inline CompressFigures measure_stream(const std::vector<Envelope>& chunks,
                                      const EnvelopeEncodeOptions& options, double seconds) {
  CompressFigures f;
  std::vector<std::string> encoded;
  for (const Envelope& e : chunks) {
    encoded.push_back(encode_envelope(e, options));
    const Result<Envelope> back = decode_envelope(encoded.back());
    if (!back.is_ok() || *back != e) bench::fail("a compressed chunk does not round-trip");
    f.raw_bytes += e.message.snapshot.data.size();
    f.wire_bytes += encoded.back().size();
    f.compressed_chunks += encoded.back()[0] == static_cast<char>(kEnvelopeFormatVersion) ? 1 : 0;
  }
  std::string out;
  f.encode = time_calls(seconds, [&] {
    for (const Envelope& e : chunks) {
      out.clear();
      encode_envelope_to(e, out, options);
      g_sink = out.size();
    }
  });
  f.decode = time_calls(seconds, [&] {
    for (const std::string& bytes : encoded) {
      const Result<Envelope> decoded = decode_envelope(bytes);
      if (!decoded.is_ok()) bench::fail(decoded.status().to_string());
      g_sink = decoded_size(*decoded);
    }
  });
  return f;
}

// The stream's chunks as the envelopes a shard's leader sends its learner.
inline std::vector<Envelope> chunk_envelopes(bench::ValueKind kind, std::uint64_t keys) {
  Rng rng(0xc0ffee + static_cast<std::uint64_t>(kind));
  std::vector<Envelope> envelopes;
  std::uint64_t offset = 0;
  for (std::string& data : bench::snapshot_stream_chunks(kind, keys, 1024, 1 << 20, rng)) {
    Envelope e;
    e.from = NodeId("node-1");
    e.to = NodeId("node-2");
    e.group = GroupId(17);
    e.message.type = MessageType::kSnapshot;
    e.message.from = e.from;
    e.message.to = e.to;
    e.message.term = Term(42);
    SnapshotChunk& chunk = e.message.snapshot;
    chunk.meta.index = LogIndex(keys);
    chunk.meta.term = Term(42);
    chunk.meta.conf_state.voters = {NodeId("node-1"), NodeId("node-3"), NodeId("node-4")};
    chunk.meta.conf_state.learners = {NodeId("node-2")};
    chunk.transfer_id = 7;
    chunk.offset = offset;
    offset += data.size();
    chunk.data = std::move(data);
    envelopes.push_back(std::move(e));
  }
  envelopes.back().message.snapshot.last = true;
  return envelopes;
}

inline void print_compress(std::string_view line, bench::ValueKind kind,
                           const CompressSetting& setting, std::uint64_t chunks,
                           const CompressFigures& f) {
  JsonLine(line)
      .add("values", bench::value_kind_name(kind))
      .add("setting", setting.name)
      .add("chunks", chunks)
      .add("compressed_chunks", f.compressed_chunks)
      .add("raw_bytes", f.raw_bytes)
      .add("wire_bytes", f.wire_bytes)
      .add("ratio", f.ratio())
      .add("encode_mb_per_cpu_s", f.encode_mb_per_cpu_s())
      .add("decode_mb_per_cpu_s", f.decode_mb_per_cpu_s())
      .add("encode_mb_per_s", static_cast<double>(f.raw_bytes) / f.encode.wall_ns * 1e3)
      .add("decode_mb_per_s", static_cast<double>(f.raw_bytes) / f.decode.wall_ns * 1e3)
      .add("load_avg_1m", bench::load_average_1min())
      .print();
}

// The median of `runs` by encode and by decode speed (the sizes are the same in every run).
inline CompressFigures median_run(std::vector<CompressFigures> runs) {
  const auto by = [&](auto key) {
    std::sort(runs.begin(), runs.end(),
              [&](const auto& a, const auto& b) { return key(a) < key(b); });
    return runs[runs.size() / 2];
  };
  CompressFigures median = by([](const CompressFigures& f) { return f.encode.cpu_ns; });
  median.decode = by([](const CompressFigures& f) { return f.decode.cpu_ns; }).decode;
  return median;
}

inline void run_compression(double seconds, std::uint64_t repetitions, std::uint64_t keys) {
  const std::vector<CompressSetting> settings = compress_settings();
  for (const bench::ValueKind kind : bench::kValueKinds) {
    const std::vector<Envelope> chunks = chunk_envelopes(kind, keys);
    std::vector<std::vector<CompressFigures>> runs(settings.size());
    std::vector<AdaptiveFigures> adaptive_runs;
    for (std::uint64_t rep = 1; rep <= repetitions; ++rep) {
      for (std::size_t s = 0; s < settings.size(); ++s) {
        runs[s].push_back(measure_stream(chunks, settings[s].options, seconds));
        print_compress("codec_compress", kind, settings[s], chunks.size(), runs[s].back());
      }
      adaptive_runs.push_back(measure_adaptive(chunks, seconds));
      print_adaptive("codec_compress_adaptive", kind, adaptive_runs.back());
    }
    for (std::size_t s = 0; s < settings.size(); ++s) {
      print_compress("codec_compress_summary", kind, settings[s], chunks.size(),
                     median_run(runs[s]));
    }
    print_adaptive("codec_compress_adaptive_summary", kind, median_adaptive(adaptive_runs));
  }
}

}  // namespace nodenomad::codec_bench
