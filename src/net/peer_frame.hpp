// The peer wire format of AsioTransport, as pure functions over bytes: no
// socket, no Asio, no clock, so every parser here can be fuzzed
// (fuzz/fuzz_peer_frame.cpp) and unit-tested byte by byte.
//
// A connection, as the dialer sees it (docs/transport.md tells the story):
//
//   dialer -> acceptor:  opening | frame(hello)  | frame(envelopes) | frame(...) ...
//   acceptor -> dialer:  opening | frame(welcome or refusal)
//
// Opening (5 bytes), the only part every protocol version keeps unchanged:
//
//   offset 0      1      2      3      4
//          +------+------+------+------+---------+
//          | 0x00 | 'N'  | 'N'  | 'P'  | version |
//          +------+------+------+------+---------+
//
//   The leading NUL tells a peer from an HTTP client on the same port: no
//   HTTP request (and no TLS ClientHello) starts with a zero byte.
//
// Frame (drawn again next to encode_frame_header in peer_frame.cpp):
//
//   offset 0              4                  8                       16
//          +--------------+------------------+-----------------------+---------+
//          | length (u32) | header_sum (u32) | payload_sum (u64)     | payload |
//          +--------------+------------------+-----------------------+---------+
//   little endian; header_sum = low 32 bits of xxh3_64(length bytes, seed);
//   payload_sum = xxh3_64(payload, seed ^ length).
//
//   The header checksum lets a reader refuse a damaged length before trusting
//   it; seeding the payload checksum with the length ties the two together.
//   (The shape is the one of the disk records, common/record_format.hpp, with
//   its own seed: the two formats may part ways without touching each other.)
//
// Payload of a data frame: zero or more records, each
//   varint envelope_bytes | envelope (nodenomad/transport.hpp's encoding)
// A frame with no record is a keepalive.
//
// Payload of a handshake frame (at most kMaxHelloBytes):
//   u8 type (1 hello, 2 welcome, 3 refusal) | cluster_id | sender node id |
//   addressee node id | reason          (each string: varint length, bytes)
//
// Thread safety: free functions and per-connection values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/status.hpp"
#include "nodenomad/transport.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::net {

inline constexpr std::array<char, 4> kPeerMagic = {'\0', 'N', 'N', 'P'};
inline constexpr std::uint8_t kPeerProtocolVersion = 1;
inline constexpr std::size_t kOpeningBytes = 5;
inline constexpr std::size_t kFrameHeaderBytes = 16;
inline constexpr std::uint64_t kFrameChecksumSeed = 0x4e4e504652414d45ULL;  // "NNPFRAME"
// A handshake frame is small; its bound keeps a stranger from making the
// acceptor buffer anything before it has proven it speaks the protocol.
inline constexpr std::uint32_t kMaxHelloBytes = 4096;
// Cluster ids and node ids in a hello are at most this long, so that every
// valid hello fits kMaxHelloBytes.
inline constexpr std::size_t kMaxHelloFieldBytes = 1024;

// ---- opening ----------------------------------------------------------------

// Appends the 5 opening bytes for `version`.
void encode_opening(std::string& out, std::uint8_t version = kPeerProtocolVersion);

enum class Opening {
  kNeedMore,  // a prefix of the magic so far: read more
  kPeer,      // the whole magic and the version byte have arrived
  kForeign,   // the first byte is not NUL: another protocol (HTTP), hand it over
  kNotPeer,   // starts with NUL but is not the magic: garbage, close
};
// Classifies the first bytes of an accepted connection (any length >= 1).
Opening classify_opening(std::string_view first_bytes);

// ---- frames -----------------------------------------------------------------

// Appends a 16-byte header (zeros) and returns its offset; append records,
// then finish_frame(out, offset) fills in the length and checksums.
std::size_t begin_frame(std::string& out);
void finish_frame(std::string& out, std::size_t frame_offset);
// Appends one record (varint length + the encoded envelope).
void append_record(std::string& out, std::string_view encoded_envelope);
// What append_record adds to a payload for an envelope of `envelope_bytes`.
std::size_t record_bytes(std::size_t envelope_bytes);
// The same frame as begin_frame/append_record/finish_frame, built for a
// gathered write (writev): the header, every record's varint length and the
// small records are copied into one buffer; a record of kCopyBelowBytes or
// more is referenced where it lies, so a catch-up's megabyte envelopes go to
// the socket without being copied (or a fresh buffer faulted in) once more.
// The referenced records must outlive the write. pieces() is the frame, in
// order, valid until the next begin().
class GatheredFrame {
 public:
  static constexpr std::size_t kCopyBelowBytes = 16 * 1024;

  void begin();
  void add_record(std::string_view encoded_envelope);
  // Fills in the header; then pieces() and size() are the frame.
  void finish();
  const std::vector<std::string_view>& pieces() const { return pieces_; }
  std::size_t size() const { return size_; }
  // The copy buffer's capacity (a link releases a large one when idle).
  std::size_t retained_bytes() const { return copied_.capacity(); }
  void release() { std::string().swap(copied_); }

 private:
  // A stretch of the frame: copied_[offset, offset + size) when `external`
  // is null, else external[0, size).
  struct Piece {
    const char* external = nullptr;
    std::size_t offset = 0;
    std::size_t size = 0;
  };
  void extend_copied(std::size_t from);

  std::string copied_;
  std::vector<Piece> layout_;
  std::vector<std::string_view> pieces_;
  std::size_t size_ = 0;
};

// The header alone, for a payload of `length` bytes with checksum `payload_sum`
// (tests use it to claim lengths they never send).
std::string encode_frame_header(std::uint32_t length, std::uint64_t payload_sum);
std::uint64_t frame_payload_checksum(std::string_view payload);
// A whole frame around `payload` (handshakes, keepalives, tests).
std::string encode_frame(std::string_view payload);

enum class FrameStatus {
  kFrame,        // `payload` holds one complete, verified payload
  kNeedMore,     // no complete frame buffered yet
  kTooLarge,     // the header claims more than the bound: close the connection
  kBadChecksum,  // header or payload checksum mismatch: close the connection
};

struct FrameStep {
  FrameStatus status = FrameStatus::kNeedMore;
  std::string_view payload;          // kFrame: lies in `owner`
  std::uint64_t claimed_bytes = 0;   // kTooLarge: the length the header claimed
  // kFrame: the buffer holding the payload. Its bytes stay as they are while
  // anyone holds it: the decoder writes into a fresh buffer instead.
  std::shared_ptr<const std::string> owner;
};

// Splits a byte stream into verified frame payloads. It buffers only bytes
// that have arrived: a header that claims more than `max_payload_bytes` is
// refused as soon as its 16 bytes are in, before any of it is allocated.
// Errors are final: every later next() answers the same error.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_payload_bytes) : max_payload_bytes_(max_payload_bytes) {}

  void append(std::string_view bytes);
  FrameStep next();
  // Bytes after the last frame returned, not yet part of a complete frame.
  std::string_view unconsumed() const;
  std::size_t buffered_bytes() const { return buffer_->size() - consumed_; }
  std::size_t capacity() const { return buffer_->capacity(); }

 private:
  std::uint32_t max_payload_bytes_;
  std::shared_ptr<std::string> buffer_ = std::make_shared<std::string>();
  std::size_t consumed_ = 0;
  std::size_t last_frame_bytes_ = 0;  // header and payload of the last frame
  std::optional<FrameStep> error_;
};

// Decodes every record of a data frame's payload, appending to `out`. On a
// malformed record answers kCorruption naming it; `out` may then hold the
// envelopes before it, which the caller must not deliver.
//
// With an `owner` (the buffer `payload` lies in), the entries' data are
// slices of it, as long as they are at least half of the payload (a catch-up's
// appends): no allocation per entry. A frame mostly of something else (a
// snapshot chunk, a few small entries) has its entries copied, so that they
// do not keep the whole frame alive in a log's cache.
Status decode_frame_payload(std::string_view payload, std::vector<Envelope>& out,
                            const std::shared_ptr<const std::string>& owner = nullptr);

// ---- handshake ----------------------------------------------------------------

enum class HelloType : std::uint8_t { kHello = 1, kWelcome = 2, kRefusal = 3 };

struct Hello {
  HelloType type = HelloType::kHello;
  std::string cluster_id;
  NodeId sender;
  NodeId addressee;    // kHello: the node the dialer meant to reach; kWelcome: the dialer
  std::string reason;  // kRefusal: why, in one sentence

  bool operator==(const Hello&) const = default;
};

// The opening followed by the hello's frame: everything one side sends.
std::string encode_hello(const Hello& hello, std::uint8_t version = kPeerProtocolVersion);
Result<Hello> decode_hello_payload(std::string_view payload);

// Reads the other side's opening and handshake frame from a byte stream.
class HelloReader {
 public:
  enum class State {
    kNeedMore,
    kDone,             // hello() and leftover() are valid
    kForeign,          // received() is what was read; hand the connection over
    kNotPeer,          // NUL first but not the magic
    kVersionMismatch,  // peer_version() differs from kPeerProtocolVersion
    kBadFrame,         // error() says what
  };

  // Feeds bytes that arrived; answers the state so far. After a state other
  // than kNeedMore, further bytes are ignored.
  State feed(std::string_view bytes);
  State state() const { return state_; }

  const Hello& hello() const { return hello_; }
  std::string_view leftover() const { return leftover_; }
  const std::string& received() const { return received_; }
  std::uint8_t peer_version() const { return peer_version_; }
  const std::string& error() const { return error_; }
  // How many more bytes to read before the opening is settled (0 after it):
  // reading no further than that keeps a foreign client's bytes in its stream.
  std::size_t opening_bytes_missing() const;

 private:
  State fail(State state, std::string error);

  State state_ = State::kNeedMore;
  std::string received_;
  bool opening_done_ = false;
  std::uint8_t peer_version_ = 0;
  FrameDecoder decoder_{kMaxHelloBytes};
  Hello hello_;
  std::string leftover_;
  std::string error_;
};

// ---- addresses ----------------------------------------------------------------

struct HostPort {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
};
// "host:port", "1.2.3.4:5", "[::1]:5"; nullopt for anything else.
std::optional<HostPort> parse_host_port(std::string_view address);

}  // namespace nodenomad::net
