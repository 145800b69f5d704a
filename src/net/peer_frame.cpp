// The peer wire format (layout drawn in peer_frame.hpp).
#include "net/peer_frame.hpp"

// XXH3_state_t on the stack (GatheredFrame's streamed checksum).
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "raft/byte_io.hpp"

namespace nodenomad::net {
namespace {

void put_u32(char* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(char* at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t get_u32(const char* at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(at[i])} << (8 * i);
  return v;
}
std::uint64_t get_u64(const char* at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(at[i])} << (8 * i);
  return v;
}

std::uint32_t header_checksum(std::uint32_t length) {
  char bytes[4];
  put_u32(bytes, length);
  return static_cast<std::uint32_t>(XXH3_64bits_withSeed(bytes, 4, kFrameChecksumSeed));
}

std::uint64_t payload_checksum(std::string_view payload) {
  return XXH3_64bits_withSeed(payload.data(), payload.size(), kFrameChecksumSeed ^ payload.size());
}

std::size_t varint_bytes(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

}  // namespace

// ---- opening ----------------------------------------------------------------

void encode_opening(std::string& out, std::uint8_t version) {
  out.append(kPeerMagic.data(), kPeerMagic.size());
  out.push_back(static_cast<char>(version));
}

Opening classify_opening(std::string_view first_bytes) {
  NN_ASSERT(!first_bytes.empty(), "classify_opening needs at least one byte");
  if (first_bytes[0] != '\0') return Opening::kForeign;
  const std::size_t magic_seen = std::min(first_bytes.size(), kPeerMagic.size());
  if (std::memcmp(first_bytes.data(), kPeerMagic.data(), magic_seen) != 0) {
    return Opening::kNotPeer;
  }
  return first_bytes.size() >= kOpeningBytes ? Opening::kPeer : Opening::kNeedMore;
}

// ---- frames -----------------------------------------------------------------

std::size_t begin_frame(std::string& out) {
  const std::size_t offset = out.size();
  out.append(kFrameHeaderBytes, '\0');
  return offset;
}

// Fills in the header reserved by begin_frame:
//
//   offset 0              4                  8                       16
//          +--------------+------------------+-----------------------+---------+
//          | length (u32) | header_sum (u32) | payload_sum (u64)     | payload |
//          +--------------+------------------+-----------------------+---------+
void finish_frame(std::string& out, std::size_t frame_offset) {
  NN_ASSERT(out.size() >= frame_offset + kFrameHeaderBytes, "finish_frame without begin_frame");
  const std::size_t payload_bytes = out.size() - frame_offset - kFrameHeaderBytes;
  NN_ASSERT(payload_bytes <= UINT32_MAX, "a frame payload must fit its u32 length");
  const std::string_view payload(out.data() + frame_offset + kFrameHeaderBytes, payload_bytes);
  const std::string header =
      encode_frame_header(static_cast<std::uint32_t>(payload_bytes), payload_checksum(payload));
  std::memcpy(out.data() + frame_offset, header.data(), kFrameHeaderBytes);
}

std::string encode_frame_header(std::uint32_t length, std::uint64_t payload_sum) {
  std::string header(kFrameHeaderBytes, '\0');
  put_u32(header.data(), length);
  put_u32(header.data() + 4, header_checksum(length));
  put_u64(header.data() + 8, payload_sum);
  return header;
}

std::uint64_t frame_payload_checksum(std::string_view payload) { return payload_checksum(payload); }

void append_record(std::string& out, std::string_view encoded_envelope) {
  raft_io::ByteWriter(out).bytes(encoded_envelope);
}

std::size_t record_bytes(std::size_t envelope_bytes) {
  return varint_bytes(envelope_bytes) + envelope_bytes;
}

void GatheredFrame::begin() {
  copied_.clear();
  layout_.clear();
  pieces_.clear();
  size_ = 0;
  copied_.append(kFrameHeaderBytes, '\0');
  layout_.push_back(Piece{nullptr, 0, kFrameHeaderBytes});
}

void GatheredFrame::extend_copied(std::size_t from) {
  Piece& last = layout_.back();
  if (last.external == nullptr) {
    last.size = copied_.size() - last.offset;
  } else {
    layout_.push_back(Piece{nullptr, from, copied_.size() - from});
  }
}

void GatheredFrame::add_record(std::string_view encoded_envelope) {
  NN_ASSERT(!layout_.empty(), "add_record before begin");
  const std::size_t from = copied_.size();
  raft_io::ByteWriter writer(copied_);
  if (encoded_envelope.size() < kCopyBelowBytes) {
    writer.bytes(encoded_envelope);
    extend_copied(from);
    return;
  }
  writer.varint(encoded_envelope.size());
  extend_copied(from);
  layout_.push_back(Piece{encoded_envelope.data(), 0, encoded_envelope.size()});
}

void GatheredFrame::finish() {
  NN_ASSERT(!layout_.empty(), "finish before begin");
  pieces_.clear();
  size_ = 0;
  for (const Piece& piece : layout_) {
    pieces_.emplace_back(piece.external != nullptr ? piece.external : copied_.data() + piece.offset,
                         piece.size);
    size_ += piece.size;
  }
  const std::size_t payload_bytes = size_ - kFrameHeaderBytes;
  NN_ASSERT(payload_bytes <= UINT32_MAX, "a frame payload must fit its u32 length");
  // payload_checksum() over the pieces after the header, as one stream.
  XXH3_state_t state;
  XXH3_64bits_reset_withSeed(&state, kFrameChecksumSeed ^ payload_bytes);
  const std::string_view first_payload = pieces_.front().substr(kFrameHeaderBytes);
  XXH3_64bits_update(&state, first_payload.data(), first_payload.size());
  for (std::size_t i = 1; i < pieces_.size(); ++i) {
    XXH3_64bits_update(&state, pieces_[i].data(), pieces_[i].size());
  }
  const std::string header =
      encode_frame_header(static_cast<std::uint32_t>(payload_bytes), XXH3_64bits_digest(&state));
  std::memcpy(copied_.data(), header.data(), kFrameHeaderBytes);
}

std::string encode_frame(std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size());
  const std::size_t offset = begin_frame(out);
  out.append(payload);
  finish_frame(out, offset);
  return out;
}

void FrameDecoder::append(std::string_view bytes) {
  if (error_) return;
  if (buffer_.use_count() > 1) {
    // Entries decoded from an earlier frame are slices of this buffer: leave
    // it to them, and go on in a fresh one with the bytes not yet consumed.
    // It starts with room for a frame as large as the last one (bytes that
    // arrived, not a length read from the wire), so that a catch-up's
    // megabyte frames do not regrow it by doubling, copying each one twice.
    auto fresh = std::make_shared<std::string>();
    fresh->reserve(std::max(buffer_->size() - consumed_ + bytes.size(), last_frame_bytes_));
    fresh->append(std::string_view(*buffer_).substr(consumed_));
    buffer_ = std::move(fresh);
    consumed_ = 0;
  } else {
    // The last slice may have been dropped on another thread: see its reads
    // of the buffer before writing it (use_count() is a relaxed load; the
    // count's decrement is a release).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (consumed_ > 0) {
      // Drop what earlier frames consumed before growing, so the buffer
      // holds at most one frame plus one read.
      buffer_->erase(0, consumed_);
      consumed_ = 0;
    }
  }
  buffer_->append(bytes);
}

FrameStep FrameDecoder::next() {
  if (error_) return *error_;
  const std::string_view rest = std::string_view(*buffer_).substr(consumed_);
  if (rest.size() < kFrameHeaderBytes) return {};
  const std::uint32_t length = get_u32(rest.data());
  if (get_u32(rest.data() + 4) != header_checksum(length)) {
    error_ = FrameStep{FrameStatus::kBadChecksum, {}, length, nullptr};
    return *error_;
  }
  if (length > max_payload_bytes_) {
    error_ = FrameStep{FrameStatus::kTooLarge, {}, length, nullptr};
    return *error_;
  }
  if (rest.size() - kFrameHeaderBytes < length) return {};
  const std::string_view payload = rest.substr(kFrameHeaderBytes, length);
  if (get_u64(rest.data() + 8) != payload_checksum(payload)) {
    error_ = FrameStep{FrameStatus::kBadChecksum, {}, length, nullptr};
    return *error_;
  }
  consumed_ += kFrameHeaderBytes + length;
  last_frame_bytes_ = kFrameHeaderBytes + length;
  return FrameStep{FrameStatus::kFrame, payload, length, buffer_};
}

std::string_view FrameDecoder::unconsumed() const {
  return std::string_view(*buffer_).substr(consumed_);
}

Status decode_frame_payload(std::string_view payload, std::vector<Envelope>& out,
                            const std::shared_ptr<const std::string>& owner) {
  const std::size_t first = out.size();
  std::uint64_t entry_bytes = 0;
  raft_io::ByteReader reader(payload);
  for (std::size_t record = 0; !reader.done(); ++record) {
    std::string_view bytes;
    if (!reader.bytes(bytes)) {
      return Status::corruption(fmt::format("frame record {}: its length runs past the frame",
                                            record));
    }
    Result<Envelope> envelope =
        owner != nullptr ? decode_envelope(bytes, owner) : decode_envelope(bytes);
    if (!envelope.is_ok()) {
      return envelope.status().with_context(fmt::format("frame record {}", record));
    }
    for (const Entry& e : envelope->message.entries) entry_bytes += e.data.size();
    out.push_back(std::move(*envelope));
  }
  if (owner != nullptr && entry_bytes < payload.size() / 2) {
    for (std::size_t i = first; i < out.size(); ++i) {
      for (Entry& e : out[i].message.entries) e.data = SharedBytes(e.data.view());
    }
  }
  return Status::ok();
}

// ---- handshake ----------------------------------------------------------------

std::string encode_hello(const Hello& hello, std::uint8_t version) {
  std::string payload;
  raft_io::ByteWriter writer(payload);
  writer.u8(static_cast<std::uint8_t>(hello.type));
  writer.bytes(hello.cluster_id);
  writer.bytes(hello.sender.str());
  writer.bytes(hello.addressee.str());
  // A refusal's reason is ours to write; cut it so the frame stays in bound.
  writer.bytes(std::string_view(hello.reason).substr(0, kMaxHelloFieldBytes));
  NN_ASSERT(payload.size() <= kMaxHelloBytes, "a hello must fit kMaxHelloBytes");
  std::string out;
  encode_opening(out, version);
  out.append(encode_frame(payload));
  return out;
}

Result<Hello> decode_hello_payload(std::string_view payload) {
  raft_io::ByteReader reader(payload);
  std::uint8_t type = 0;
  if (!reader.u8(type) || type < 1 || type > 3) {
    return Status::corruption("handshake: the message type is missing or unknown");
  }
  Hello hello;
  hello.type = static_cast<HelloType>(type);
  std::string sender;
  std::string addressee;
  if (!reader.string(hello.cluster_id) || !reader.string(sender) || !reader.string(addressee) ||
      !reader.string(hello.reason)) {
    return Status::corruption("handshake: a field runs past the end of the frame");
  }
  if (!reader.done()) return Status::corruption("handshake: bytes follow the last field");
  if (sender.empty()) return Status::corruption("handshake: the sender's node id is empty");
  hello.sender = NodeId(std::move(sender));
  hello.addressee = NodeId(std::move(addressee));
  return hello;
}

HelloReader::State HelloReader::feed(std::string_view bytes) {
  if (state_ != State::kNeedMore || bytes.empty()) return state_;
  received_.append(bytes);
  if (!opening_done_) {
    switch (classify_opening(received_)) {
      case Opening::kNeedMore: return state_;
      case Opening::kForeign: return state_ = State::kForeign;
      case Opening::kNotPeer:
        return fail(State::kNotPeer, "its first bytes are NUL but not the peer magic");
      case Opening::kPeer: break;
    }
    opening_done_ = true;
    peer_version_ = static_cast<std::uint8_t>(received_[kPeerMagic.size()]);
    if (peer_version_ != kPeerProtocolVersion) return state_ = State::kVersionMismatch;
    decoder_.append(std::string_view(received_).substr(kOpeningBytes));
  } else {
    decoder_.append(bytes);
  }
  const FrameStep step = decoder_.next();
  switch (step.status) {
    case FrameStatus::kNeedMore: return state_;
    case FrameStatus::kTooLarge:
      return fail(State::kBadFrame, fmt::format("its handshake frame claims {} bytes, above the "
                                                "bound of {}", step.claimed_bytes, kMaxHelloBytes));
    case FrameStatus::kBadChecksum:
      return fail(State::kBadFrame, "its handshake frame fails its checksum");
    case FrameStatus::kFrame: break;
  }
  Result<Hello> hello = decode_hello_payload(step.payload);
  if (!hello.is_ok()) return fail(State::kBadFrame, std::string(hello.status().message()));
  hello_ = std::move(*hello);
  leftover_.assign(decoder_.unconsumed());
  return state_ = State::kDone;
}

HelloReader::State HelloReader::fail(State state, std::string error) {
  error_ = std::move(error);
  return state_ = state;
}

std::size_t HelloReader::opening_bytes_missing() const {
  if (opening_done_ || received_.size() >= kOpeningBytes) return 0;
  return kOpeningBytes - received_.size();
}

// ---- addresses ----------------------------------------------------------------

std::optional<HostPort> parse_host_port(std::string_view address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return std::nullopt;
  }
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // a bare IPv6 address is ambiguous: it needs brackets
  }
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return std::nullopt;
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

}  // namespace nodenomad::net
