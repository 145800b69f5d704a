// zstd for snapshot chunk data on the wire (the envelope codec's version 2,
// drawn in nodenomad/transport.hpp). Two calls, each on a zstd context of
// the calling thread's own, created on first use and freed when the thread
// exits: compression runs on whatever thread sends (a node's loop, a
// transport strand), so contexts are neither shared nor locked.
//
// Thread safety: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nodenomad/status.hpp"

namespace nodenomad::chunk_compression {

// Compresses `raw` at zstd `level` into `out` (replacing what it held) as
// one frame that declares its decompressed size and ends with a checksum of
// it (XXH64, 4 bytes), so damage that still parses is caught too. False
// when that frame would be larger than `max_bytes` (or zstd could not get a
// context); `out` is then unspecified. Never allocates more than
// `max_bytes` for `out`.
bool compress_at_most(std::string_view raw, int level, std::size_t max_bytes, std::string& out);

// Decompresses `frame` into `out` (replacing what it held). kCorruption,
// before anything is allocated, unless `frame` is exactly one zstd frame
// whose header declares `raw_bytes` and a content checksum; kCorruption if
// it is damaged or does not produce exactly `raw_bytes` with that checksum.
// Allocates `raw_bytes` for `out` and nothing else that depends on the
// input: the caller bounds `raw_bytes`. Out of memory (zstd cannot get a
// context) throws std::bad_alloc, as an allocation would.
Status decompress_exactly(std::string_view frame, std::uint64_t raw_bytes, std::string& out);

// The zstd levels a caller may ask for.
int min_level();
int max_level();

}  // namespace nodenomad::chunk_compression
