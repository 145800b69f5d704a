#include "storage/framed_record_reader.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/record_format.hpp"
#include "storage/byte_codec.hpp"

namespace nodenomad::storage {

Status FramedRecordReader::check_header(const char* header, std::uint64_t at,
                                        std::uint32_t& length) {
  length = load_u32(header);
  if (load_u32(header + 4) != record::header_checksum(length)) {
    return Status::corruption(fmt::format("record header checksum mismatch at offset {}", at));
  }
  if (length > record::kMaxRecordPayloadBytes) {
    return Status::corruption(
        fmt::format("record length {} over the limit at offset {}", length, at));
  }
  return Status::ok();
}

Status FramedRecordReader::deliver(const char* header, std::string_view payload, std::uint64_t at,
                                   const OnRecord& on_record) {
  if (record::checksum(payload) != load_u64(header + 8)) {
    return Status::corruption(fmt::format("record checksum mismatch at offset {}", at));
  }
  return on_record(payload, at);
}

Status FramedRecordReader::complete_partial(std::string_view& bytes, const OnRecord& on_record) {
  const auto take = [&](std::size_t wanted) {
    const std::size_t n = std::min(wanted, bytes.size());
    partial_.append(bytes.data(), n);
    bytes.remove_prefix(n);
  };
  if (partial_.size() < record::kHeaderBytes) take(record::kHeaderBytes - partial_.size());
  if (partial_.size() < record::kHeaderBytes) return Status::ok();
  std::uint32_t length = 0;
  NN_RETURN_IF_ERROR(check_header(partial_.data(), stream_offset_, length));
  const std::size_t framed = record::kHeaderBytes + length;
  take(framed - partial_.size());
  if (partial_.size() < framed) return Status::ok();
  NN_RETURN_IF_ERROR(deliver(partial_.data(),
                             std::string_view(partial_).substr(record::kHeaderBytes, length),
                             stream_offset_, on_record));
  stream_offset_ += framed;
  partial_.clear();
  if (partial_.capacity() > kKeptPartialBytes) std::string().swap(partial_);
  return Status::ok();
}

Status FramedRecordReader::feed(std::string_view bytes, const OnRecord& on_record) {
  // First the record that straddles the previous chunk and this one, if
  // any: only its own bytes are copied. Then the records that lie wholly in
  // `bytes`, parsed in place. A stream has no torn tail: its owner refuses
  // an incomplete last record.
  if (!partial_.empty()) {
    Status completed = complete_partial(bytes, on_record);
    if (!completed.is_ok()) {
      partial_.append(bytes);  // nothing is consumed past an error
      return completed;
    }
    if (!partial_.empty()) return Status::ok();  // `bytes` did not complete it
  }
  std::size_t pos = 0;
  Status status;
  while (bytes.size() - pos >= record::kHeaderBytes) {
    const std::uint64_t at = stream_offset_ + pos;
    const char* header = bytes.data() + pos;
    std::uint32_t length = 0;
    status = check_header(header, at, length);
    if (!status.is_ok()) break;
    if (bytes.size() - pos < record::kHeaderBytes + length) break;
    status = deliver(header, bytes.substr(pos + record::kHeaderBytes, length), at, on_record);
    if (!status.is_ok()) break;
    pos += record::kHeaderBytes + length;
  }
  stream_offset_ += pos;
  partial_.assign(bytes.substr(pos));  // the incomplete record (or, after an error, the rest)
  return status;
}

}  // namespace nodenomad::storage
