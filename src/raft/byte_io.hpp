// ByteWriter / ByteReader: the varint and string primitives of the Raft wire
// and entry encodings (message_codec.cpp, conf_change.cpp).
//
// ByteReader reads untrusted bytes: every read checks the bytes that remain
// and answers false instead of reading past the end, so a decoder built on it
// fails cleanly on hostile input. A length or a count is never trusted beyond
// what the remaining bytes could hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nodenomad::raft_io {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  // Unsigned LEB128: 7 bits per byte, low bits first.
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void bytes(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  std::size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }

  bool u8(std::uint8_t& v) {
    if (remaining() < 1) return false;
    v = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }
  // At most 10 bytes; the tenth may carry only the top bit of the value.
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t byte = 0;
      if (!u8(byte)) return false;
      if (shift == 63 && byte > 1) return false;
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }
  bool bytes(std::string_view& s) {
    std::uint64_t n = 0;
    if (!varint(n) || n > remaining()) return false;
    s = in_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  bool string(std::string& s) {
    std::string_view view;
    if (!bytes(view)) return false;
    s.assign(view);
    return true;
  }
  // A count of items each at least `min_item_bytes` long: refused when the
  // remaining bytes could not hold that many, which bounds any allocation.
  bool count(std::uint64_t& n, std::size_t min_item_bytes) {
    if (!varint(n)) return false;
    return n <= remaining() / (min_item_bytes == 0 ? 1 : min_item_bytes);
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace nodenomad::raft_io
