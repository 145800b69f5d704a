// Little-endian integer helpers shared by the storage formats (commands, WAL
// payloads, snapshots). Writers append to a std::string; ByteReader reads
// untrusted bytes and never reads past its end: every read reports failure
// instead, so a decoder built on it cannot overrun or over-allocate.
//
// Thread safety: values; one ByteReader per thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace nodenomad::storage {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

inline void put_u16(std::string& out, std::uint16_t v) {
  char b[2] = {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
  out.append(b, 2);
}

inline void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}

inline void put_u64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}

inline void put_i64(std::string& out, std::int64_t v) {
  put_u64(out, static_cast<std::uint64_t>(v));
}

// Writes `v` over the 8 bytes at `pos` of `out` (which must already hold them).
inline void store_u64_at(std::string& out, std::size_t pos, std::uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) out[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Writes `v` over the 4 bytes at `pos` of `out` (which must already hold them).
inline void store_u32_at(std::string& out, std::size_t pos, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) out[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

inline std::uint64_t load_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline std::uint32_t load_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Reads fields in order from untrusted bytes. A read that would run past the
// end returns false and leaves the reader where it was.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  std::size_t remaining() const { return bytes_.size() - pos_; }
  bool done() const { return pos_ == bytes_.size(); }
  std::size_t position() const { return pos_; }

  bool read_u8(std::uint8_t& out) {
    if (remaining() < 1) return false;
    out = static_cast<std::uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool read_u16(std::uint16_t& out) {
    if (remaining() < 2) return false;
    out = static_cast<std::uint16_t>(static_cast<unsigned char>(bytes_[pos_]) |
                                     (static_cast<unsigned char>(bytes_[pos_ + 1]) << 8));
    pos_ += 2;
    return true;
  }
  bool read_u32(std::uint32_t& out) {
    if (remaining() < 4) return false;
    out = load_u32(bytes_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool read_u64(std::uint64_t& out) {
    if (remaining() < 8) return false;
    out = load_u64(bytes_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool read_i64(std::int64_t& out) {
    std::uint64_t v = 0;
    if (!read_u64(v)) return false;
    out = static_cast<std::int64_t>(v);
    return true;
  }
  // A view of the next `n` bytes (valid while the input is).
  bool read_bytes(std::size_t n, std::string_view& out) {
    if (remaining() < n) return false;
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // A u32 length followed by that many bytes.
  bool read_sized(std::string_view& out) {
    const std::size_t start = pos_;
    std::uint32_t n = 0;
    if (!read_u32(n) || !read_bytes(n, out)) {
      pos_ = start;
      return false;
    }
    return true;
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

inline void put_sized(std::string& out, std::string_view bytes) {
  put_u32(out, static_cast<std::uint32_t>(bytes.size()));
  out.append(bytes);
}

}  // namespace nodenomad::storage
