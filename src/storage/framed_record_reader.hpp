// FramedRecordReader: the framing of a record stream that arrives in chunks
// (a snapshot being restored, a bucket export), common/record_format.hpp's
// records cut at any byte.
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "nodenomad/status.hpp"

namespace nodenomad::storage {

// Cuts a stream of framed records (common/record_format.hpp) arriving in
// chunks of any size into payloads, with the checks of record::scan: the
// header's own checksum before its length is trusted, then the length's
// bound, then the payload's checksum. Records that lie wholly in a chunk are
// handed out in place (a view into the chunk); only a record that straddles
// chunks is copied, and only its own bytes. Memory: at most one incomplete
// record is held back between feed() calls.
class FramedRecordReader {
 public:
  using OnRecord = std::function<Status(std::string_view payload, std::uint64_t offset)>;
  // Calls on_record for each record completed by `bytes`, stopping at the
  // first error it returns. A framing error is kCorruption "<what> at offset
  // <stream offset>". Nothing is consumed past an error.
  Status feed(std::string_view bytes, const OnRecord& on_record);
  // True while a record is incomplete (a stream must not end there).
  bool holds_partial() const { return !partial_.empty(); }
  // The stream offset of the first byte not yet handed out as a record.
  std::uint64_t offset() const { return stream_offset_; }

 private:
  // The buffer of a straddling record is let go past this size.
  static constexpr std::size_t kKeptPartialBytes = 1u << 20;

  // Checks a header at stream offset `at` and reads its length.
  static Status check_header(const char* header, std::uint64_t at, std::uint32_t& length);
  // Checks the payload's checksum and hands it to on_record.
  static Status deliver(const char* header, std::string_view payload, std::uint64_t at,
                        const OnRecord& on_record);
  // Completes partial_ from the front of `bytes` (consuming what it takes)
  // and hands it out once whole; partial_ is empty afterwards unless `bytes`
  // ran out first or an error is returned.
  Status complete_partial(std::string_view& bytes, const OnRecord& on_record);

  std::string partial_;               // an incomplete record between feed() calls
  std::uint64_t stream_offset_ = 0;   // stream offset of partial_'s first byte
};

}  // namespace nodenomad::storage
