// Reading record files back (the framing of record_format.hpp), with the
// recovery rules of DESIGN.md section 5:
//
//   - Records are read in order up to the first one that is not valid.
//   - If everything from there to the end of the file is a *torn tail*, the
//     file is cut back to the end of the last valid record (recover only) and
//     a warning names the file, the offset and the bytes dropped. A torn tail
//     is: a header cut short by the end of the file; a valid header whose
//     payload runs past the end of the file; a final record whose payload
//     checksum fails and after which there is nothing but zero bytes; or a
//     region of zero bytes (a file extended but never written).
//   - Anything else invalid is corruption before the tail: the scan stops
//     with kCorruption naming the file and the offset, and nothing is
//     modified. A flipped bit in an acknowledged record is never accepted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "nodenomad/file_system.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::record {

struct ScanResult {
  std::uint64_t records = 0;      // valid records visited
  std::uint64_t valid_bytes = 0;  // offset just past the last valid record
  std::uint64_t file_bytes = 0;   // size of the file when scanned
  bool torn_tail = false;         // bytes after valid_bytes formed a torn tail
};

// Called once per valid record with its payload (valid only during the call)
// and the offset of its header. A non-OK status stops the scan and is
// returned as is.
using Visitor = std::function<Status(std::string_view payload, std::uint64_t offset)>;

// Scans `path` from `start_offset` without modifying it.
Result<ScanResult> scan(FileSystem& fs, const std::string& path, std::uint64_t start_offset,
                        const Visitor& visit);

// Scans, then cuts a torn tail off the file (durably) and logs it.
Result<ScanResult> recover(FileSystem& fs, const std::string& path, std::uint64_t start_offset,
                           const Visitor& visit);

}  // namespace nodenomad::record
