// Fuzzes what AsioTransport reads from the network (net/peer_frame.hpp): the
// handshake reader, the frame decoder fed in pieces, and the envelope decoder
// behind a verified frame. Any bytes must give frames or a clean error, never
// a crash, a hang, or buffering beyond the bytes given.
//
// Input: byte 0 picks the piece size the stream is fed in (1..64); the rest
// is the body. Random bytes almost never carry a valid xxh3 checksum, so the
// body is also wrapped in a valid frame, which sends it through the decoders
// that sit behind the checksum. Nor do they form a zstd frame, so the body
// also makes a compressed snapshot chunk (envelope version 2) that is then
// damaged where the body says, which sends it through the decompression.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/peer_frame.hpp"
#include "nodenomad/assert.hpp"
#include "nodenomad/transport.hpp"

namespace {

using namespace nodenomad;
using namespace nodenomad::net;

constexpr std::uint32_t kMaxPayloadBytes = 1 << 16;  // scripts/fuzz.sh's -max_len

// Decoded envelopes survive a re-encode and decode unchanged, and decoding
// with the frame's buffer as the entries' owner (slices) gives the same.
void check_payload(std::string_view payload) {
  std::vector<Envelope> envelopes;
  const Status status = decode_frame_payload(payload, envelopes);
  const auto owner = std::make_shared<const std::string>(payload);
  std::vector<Envelope> sliced;
  const Status sliced_status = decode_frame_payload(*owner, sliced, owner);
  NN_ASSERT(sliced_status.code() == status.code(), "slicing must not change what decodes");
  if (!status.is_ok()) {
    NN_ASSERT(status.is(StatusCode::kCorruption), status.to_string());
    return;
  }
  NN_ASSERT(sliced == envelopes, "sliced entries must equal copied ones");
  std::string again;
  for (const Envelope& e : envelopes) append_record(again, encode_envelope(e));
  std::vector<Envelope> decoded;
  NN_ASSERT(decode_frame_payload(again, decoded).is_ok(), "a re-encoded payload must decode");
  NN_ASSERT(decoded == envelopes, "envelopes must survive a re-encode");
}

// Body: four edits of 3 bytes each (u16 offset from the end, u8 xor mask),
// then the chunk's content, repeated up to the smallest compressed chunk.
void check_compressed_chunk(std::string_view body) {
  constexpr std::size_t kEdits = 4;
  constexpr std::size_t kEditBytes = 3;
  if (body.size() <= kEdits * kEditBytes) return;
  const std::string_view content = body.substr(kEdits * kEditBytes);
  Envelope e;
  e.from = NodeId("node-1");
  e.to = NodeId("node-2");
  e.group = GroupId(3);
  e.message.type = MessageType::kSnapshot;
  e.message.snapshot.meta.index = LogIndex(10);
  e.message.snapshot.offset = 1 << 20;
  while (e.message.snapshot.data.size() < kMinCompressedChunkBytes) {
    e.message.snapshot.data.append(content);
  }
  std::string encoded = encode_envelope(e);
  const Result<Envelope> decoded = decode_envelope(encoded);
  NN_ASSERT(decoded.is_ok() && *decoded == e, "a snapshot chunk must survive its encoding");
  for (std::size_t i = 0; i < kEdits; ++i) {
    const auto byte = [&](std::size_t k) {
      return static_cast<std::uint8_t>(body[i * kEditBytes + k]);
    };
    const std::size_t from_end = (byte(0) | (std::size_t{byte(1)} << 8)) % encoded.size();
    encoded[encoded.size() - 1 - from_end] ^= static_cast<char>(byte(2));
  }
  std::string payload;
  append_record(payload, encoded);
  check_payload(payload);
}

// Feeds `stream` in pieces; answers the payloads of the frames it held.
std::vector<std::string> frames_of(std::string_view stream, std::size_t piece) {
  FrameDecoder decoder(kMaxPayloadBytes);
  std::vector<std::string> payloads;
  std::size_t fed = 0;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    const std::string_view chunk = stream.substr(at, piece);
    decoder.append(chunk);
    fed += chunk.size();
    NN_ASSERT(decoder.buffered_bytes() <= fed, "the decoder buffers only what arrived");
    for (FrameStep step = decoder.next(); step.status != FrameStatus::kNeedMore;
         step = decoder.next()) {
      if (step.status != FrameStatus::kFrame) return payloads;  // errors are final
      NN_ASSERT(step.payload.size() <= kMaxPayloadBytes);
      payloads.emplace_back(step.payload);
    }
  }
  return payloads;
}

void check_hello(std::string_view stream, std::size_t piece) {
  HelloReader reader;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    if (reader.feed(stream.substr(at, piece)) != HelloReader::State::kNeedMore) break;
  }
  if (reader.state() == HelloReader::State::kDone) {
    NN_ASSERT(!reader.hello().sender.empty(), "an accepted hello names its sender");
  }
  NN_ASSERT(reader.received().size() <= stream.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  // The body as it might arrive from a hostile peer.
  for (const std::string& payload : frames_of(body, piece)) check_payload(payload);
  check_hello(body, piece);

  // The body behind a valid checksum: a data frame, then a handshake frame.
  const std::string framed = encode_frame(body);
  const std::vector<std::string> payloads = frames_of(framed, piece);
  NN_ASSERT(payloads.size() == 1 && payloads[0] == body, "a valid frame must decode to its payload");
  check_payload(body);
  std::string opening;
  encode_opening(opening);
  check_hello(opening + framed, piece);
  const Result<Hello> hello = decode_hello_payload(body);
  NN_ASSERT(hello.is_ok() || hello.status().is(StatusCode::kCorruption));
  check_compressed_chunk(body);
  return 0;
}
