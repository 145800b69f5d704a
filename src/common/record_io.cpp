#include "common/record_io.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <xxhash.h>

#include "common/record_format.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad::record {

std::uint64_t checksum(std::string_view payload) {
  return XXH3_64bits_withSeed(payload.data(), payload.size(),
                              kRecordChecksumSeed ^ static_cast<std::uint64_t>(payload.size()));
}

std::uint32_t header_checksum(std::uint32_t length) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return static_cast<std::uint32_t>(XXH3_64bits_withSeed(bytes, 4, kRecordChecksumSeed));
}

void encode(std::string& out, std::string_view payload) {
  NN_ASSERT(payload.size() <= kMaxRecordPayloadBytes, "record payload of ", payload.size(),
            " bytes is over the ", kMaxRecordPayloadBytes, "-byte limit");
  const auto length = static_cast<std::uint32_t>(payload.size());
  const std::uint64_t sum = checksum(payload);
  const std::uint32_t header_sum = header_checksum(length);
  char header[kHeaderBytes];
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) header[4 + i] = static_cast<char>((header_sum >> (8 * i)) & 0xff);
  for (int i = 0; i < 8; ++i) header[8 + i] = static_cast<char>((sum >> (8 * i)) & 0xff);
  out.append(header, kHeaderBytes);
  out.append(payload);
}

namespace {

constexpr std::size_t kReadChunkBytes = 4u << 20;

std::uint64_t load_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A read window over a file: view(off, n) returns the n bytes at `off`,
// refilling from the file in chunks so that a scan reads each byte about once.
class Window {
 public:
  Window(ReadableFile& file, std::uint64_t file_bytes) : file_(file), file_bytes_(file_bytes) {}

  // Precondition: off + n <= file_bytes_.
  Result<std::string_view> view(std::uint64_t off, std::size_t n) {
    if (off < start_ || off + n > start_ + length_) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(std::max(kReadChunkBytes, n),
                                                           file_bytes_ - off));
      if (buffer_.size() < want) buffer_.resize(want);
      std::size_t filled = 0;
      while (filled < want) {
        NN_ASSIGN_OR_RETURN(std::size_t got,
                            file_.read_at(off + filled, std::span<char>(buffer_.data() + filled,
                                                                        want - filled)));
        if (got == 0) break;
        filled += got;
      }
      if (filled < n) {
        return Status::io_error(fmt::format("{}: short read at offset {} ({} of {} bytes)",
                                            file_.path(), off, filled, n));
      }
      start_ = off;
      length_ = filled;
    }
    return std::string_view(buffer_.data() + (off - start_), n);
  }

 private:
  ReadableFile& file_;
  std::uint64_t file_bytes_;
  std::string buffer_;
  std::uint64_t start_ = 0;
  std::size_t length_ = 0;
};

Result<bool> all_zero_from(Window& window, std::uint64_t off, std::uint64_t file_bytes) {
  while (off < file_bytes) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kReadChunkBytes, file_bytes - off));
    NN_ASSIGN_OR_RETURN(std::string_view bytes, window.view(off, n));
    if (std::any_of(bytes.begin(), bytes.end(), [](char c) { return c != 0; })) return false;
    off += n;
  }
  return true;
}

Status corruption_at(const std::string& path, std::uint64_t off, std::string_view what) {
  return Status::corruption(fmt::format(
      "{}: {} at offset {}, before the end of the file; refusing to open (the file is left "
      "untouched for inspection)",
      path, what, off));
}

}  // namespace

Result<ScanResult> scan(FileSystem& fs, const std::string& path, std::uint64_t start_offset,
                        const Visitor& visit) {
  NN_ASSIGN_OR_RETURN(auto file, fs.open_readable(path));
  NN_ASSIGN_OR_RETURN(std::uint64_t file_bytes, file->size());
  ScanResult result;
  result.file_bytes = file_bytes;
  Window window(*file, file_bytes);
  std::uint64_t off = std::min(start_offset, file_bytes);
  auto torn_here = [&]() {
    result.valid_bytes = off;
    result.torn_tail = true;
    return result;
  };
  while (off < file_bytes) {
    if (file_bytes - off < kHeaderBytes) return torn_here();
    NN_ASSIGN_OR_RETURN(std::string_view header, window.view(off, kHeaderBytes));
    const auto length = static_cast<std::uint32_t>(load_le(header.data(), 4));
    const auto header_sum = static_cast<std::uint32_t>(load_le(header.data() + 4, 4));
    const std::uint64_t expected = load_le(header.data() + 8, 8);
    if (header_sum != header_checksum(length)) {
      NN_ASSIGN_OR_RETURN(bool zeros, all_zero_from(window, off, file_bytes));
      if (zeros) return torn_here();
      return corruption_at(path, off, "record header checksum mismatch");
    }
    if (length > kMaxRecordPayloadBytes) {
      return corruption_at(path, off, fmt::format("record length {} over the {}-byte limit",
                                                  length, kMaxRecordPayloadBytes));
    }
    const std::uint64_t end = off + kHeaderBytes + length;
    if (end > file_bytes) return torn_here();
    NN_ASSIGN_OR_RETURN(std::string_view framed, window.view(off, kHeaderBytes + length));
    const std::string_view payload = framed.substr(kHeaderBytes);
    if (checksum(payload) != expected) {
      NN_ASSIGN_OR_RETURN(bool zeros_after, all_zero_from(window, end, file_bytes));
      if (zeros_after) return torn_here();
      return corruption_at(path, off, "record checksum mismatch");
    }
    NN_RETURN_IF_ERROR(visit(payload, off));
    ++result.records;
    off = end;
  }
  result.valid_bytes = off;
  return result;
}

Result<ScanResult> recover(FileSystem& fs, const std::string& path, std::uint64_t start_offset,
                           const Visitor& visit) {
  NN_ASSIGN_OR_RETURN(ScanResult result, scan(fs, path, start_offset, visit));
  if (result.torn_tail) {
    log(LogLevel::kWarn, "record_io",
        fmt::format("{}: torn tail of {} bytes at offset {} truncated (a write that was never "
                    "synced, cut short by a crash)",
                    path, result.file_bytes - result.valid_bytes, result.valid_bytes));
    NN_RETURN_IF_ERROR(fs.truncate(path, result.valid_bytes));
  }
  return result;
}

}  // namespace nodenomad::record
