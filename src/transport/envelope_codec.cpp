// The Envelope encoding (layout drawn in nodenomad/transport.hpp).
#include <fmt/format.h>

#include "nodenomad/assert.hpp"
#include "nodenomad/raft/message_codec.hpp"
#include "nodenomad/transport.hpp"
#include "raft/byte_io.hpp"
#include "transport/chunk_compression.hpp"
#include "transport/chunk_compression_history.hpp"

namespace nodenomad {
namespace {

constexpr std::uint8_t kCompressionZstd = 1;

void write_header(raft_io::ByteWriter& w, const Envelope& envelope, std::uint8_t version) {
  w.u8(version);
  w.u8(static_cast<std::uint8_t>(envelope.kind));
  w.bytes(envelope.from.str());
  w.bytes(envelope.to.str());
  w.varint(envelope.group.value());
}

void write_uncompressed(const Envelope& envelope, std::string& out) {
  raft_io::ByteWriter w(out);
  write_header(w, envelope, kEnvelopeFormatVersionUncompressed);
  if (envelope.kind == EnvelopeKind::kRaft) {
    encode_message_to(envelope.message, out);
    return;
  }
  w.varint(envelope.request_id);
  w.bytes(envelope.payload);
}

// The chunk data to try compressing, or null. A chunk above the decoder's
// bound is sent as it is: the encoder never writes what decode refuses.
const std::string* compressible_chunk(const Envelope& envelope,
                                      const EnvelopeEncodeOptions& options) {
  if (!options.compress_snapshot_chunks || envelope.kind != EnvelopeKind::kRaft ||
      envelope.message.type != MessageType::kSnapshot) {
    return nullptr;
  }
  const std::string& data = envelope.message.snapshot.data;
  if (data.size() < kMinCompressedChunkBytes || data.size() > kMaxSnapshotChunkBytes) {
    return nullptr;
  }
  return &data;
}

// Zero bytes that make the envelope carry at least 1/kMaxChunkExpansion of
// the raw size.
std::uint64_t padding_for(std::uint64_t raw_bytes, std::uint64_t frame_bytes) {
  const std::uint64_t least_carried = (raw_bytes + kMaxChunkExpansion - 1) / kMaxChunkExpansion;
  return frame_bytes >= least_carried ? 0 : least_carried - frame_bytes;
}

// `envelope` in version 2, its chunk data replaced by the zstd `frame`.
void write_compressed(const Envelope& envelope, std::string frame, std::string& out) {
  const std::uint64_t raw_bytes = envelope.message.snapshot.data.size();
  const std::uint64_t padding = padding_for(raw_bytes, frame.size());
  raft_io::ByteWriter w(out);
  write_header(w, envelope, kEnvelopeFormatVersion);
  w.u8(kCompressionZstd);
  w.varint(raw_bytes);
  w.varint(padding);
  out.append(padding, '\0');
  // The copy duplicates the raw data once more: a memcpy, under 2% of the
  // time zstd took to compress it (codec_bench: 26 us against 1.8-3.4 ms
  // per MiB).
  Message carried = envelope.message;
  carried.snapshot.data = std::move(frame);
  encode_message_to(carried, out);
}

// Tries zstd on `raw`: true, with the envelope written in version 2, if
// that saves at least 1/8 of the bytes.
bool try_compressed(const Envelope& envelope, const std::string& raw,
                    const EnvelopeEncodeOptions& options, std::string& out) {
  NN_ASSERT(options.zstd_level >= chunk_compression::min_level() &&
                options.zstd_level <= chunk_compression::max_level(),
            "zstd level ", options.zstd_level, " is out of range");
  std::string frame;
  if (!chunk_compression::compress_at_most(raw, options.zstd_level, raw.size() - raw.size() / 8,
                                           frame)) {
    return false;
  }
  write_compressed(envelope, std::move(frame), out);
  return true;
}

// The one encoder: without a history every eligible chunk is tried.
ChunkEncoding encode(const Envelope& envelope, std::string& out,
                     const EnvelopeEncodeOptions& options, ChunkCompressionHistory* history) {
  const std::string* raw = compressible_chunk(envelope, options);
  ChunkEncoding encoding = ChunkEncoding::kNotTried;
  if (raw != nullptr) {
    const SnapshotTransferKey transfer = SnapshotTransferKey::of(envelope);
    if (history == nullptr || history->should_try(transfer)) {
      const bool compressed = try_compressed(envelope, *raw, options, out);
      if (history != nullptr) history->record(transfer, compressed);
      encoding = compressed ? ChunkEncoding::kCompressed : ChunkEncoding::kIncompressible;
    } else {
      encoding = ChunkEncoding::kSkipped;
    }
  }
  if (history != nullptr && envelope.kind == EnvelopeKind::kRaft &&
      envelope.message.type == MessageType::kSnapshot && envelope.message.snapshot.last) {
    history->forget(SnapshotTransferKey::of(envelope));
  }
  if (encoding != ChunkEncoding::kCompressed) write_uncompressed(envelope, out);
  return encoding;
}

}  // namespace

void encode_envelope_to(const Envelope& envelope, std::string& out,
                        const EnvelopeEncodeOptions& options) {
  encode(envelope, out, options, nullptr);
}

ChunkEncoding encode_envelope_with_history(const Envelope& envelope, std::string& out,
                                           const EnvelopeEncodeOptions& options,
                                           ChunkCompressionHistory& history) {
  return encode(envelope, out, options, &history);
}

std::string encode_envelope(const Envelope& envelope, const EnvelopeEncodeOptions& options) {
  std::string out;
  encode_envelope_to(envelope, out, options);
  return out;
}

namespace {

Status bad(std::string_view what) {
  return Status::corruption(fmt::format("envelope: {} is missing or malformed", what));
}

// What follows `group` in a version 2 envelope: the compression, the raw
// size and the padding, checked before the message is read; then the chunk
// data, decompressed into a buffer of the checked raw size.
Result<Message> read_compressed_message(raft_io::ByteReader& r, std::string_view bytes) {
  std::uint8_t compression = 0;
  if (!r.u8(compression)) return bad("the compression byte");
  if (compression != kCompressionZstd) {
    return Status::corruption(fmt::format("envelope: compression {} is not 1 (zstd)", compression));
  }
  std::uint64_t raw_bytes = 0;
  if (!r.varint(raw_bytes)) return bad("the decompressed size");
  if (raw_bytes == 0 || raw_bytes > kMaxSnapshotChunkBytes) {
    return Status::corruption(fmt::format(
        "envelope: the decompressed size {} of a snapshot chunk is not within 1 .. {} bytes",
        raw_bytes, kMaxSnapshotChunkBytes));
  }
  std::string_view padding;
  if (!r.bytes(padding)) return bad("the padding");
  if (padding.find_first_not_of('\0') != std::string_view::npos) {
    return Status::corruption("envelope: the padding holds a byte other than zero");
  }
  Result<Message> message = decode_message(bytes.substr(bytes.size() - r.remaining()));
  if (!message.is_ok()) return message.status();
  if (message->type != MessageType::kSnapshot) {
    return Status::corruption(fmt::format("envelope: compressed chunk data in a raft {} message",
                                          message_type_name(message->type)));
  }
  const std::uint64_t carried = message->snapshot.data.size() + padding.size();
  if (raw_bytes > kMaxChunkExpansion * carried) {
    return Status::corruption(
        fmt::format("envelope: the decompressed size {} is more than {} times the {} bytes carried",
                    raw_bytes, kMaxChunkExpansion, carried));
  }
  std::string data;
  const Status decompressed =
      chunk_compression::decompress_exactly(message->snapshot.data, raw_bytes, data);
  if (!decompressed.is_ok()) {
    return decompressed.with_context("envelope: the compressed snapshot chunk data");
  }
  message->snapshot.data = std::move(data);
  return message;
}

Result<Envelope> decode(std::string_view bytes, const std::shared_ptr<const std::string>* owner) {
  raft_io::ByteReader r(bytes);
  std::uint8_t version = 0;
  if (!r.u8(version)) return bad("the version byte");
  if (version != kEnvelopeFormatVersionUncompressed && version != kEnvelopeFormatVersion) {
    return Status::corruption(
        fmt::format("envelope: format version {} is not the supported {} or {}", version,
                    kEnvelopeFormatVersionUncompressed, kEnvelopeFormatVersion));
  }
  std::uint8_t kind = 0;
  if (!r.u8(kind)) return bad("the kind byte");
  if (kind < 1 || kind > 3) {
    return Status::corruption(
        fmt::format("envelope: kind {} is not 1 (raft), 2 (request) or 3 (response)", kind));
  }
  if (version == kEnvelopeFormatVersion && kind != 1) {
    return Status::corruption(
        fmt::format("envelope: format version 2 carries raft messages only, not kind {}", kind));
  }
  Envelope envelope;
  envelope.kind = static_cast<EnvelopeKind>(kind);
  std::string from;
  std::string to;
  std::uint64_t group = 0;
  if (!r.string(from)) return bad("the sender");
  if (!r.string(to)) return bad("the receiver");
  if (!r.varint(group)) return bad("the group");
  envelope.from = NodeId(std::move(from));
  envelope.to = NodeId(std::move(to));
  envelope.group = GroupId(group);
  if (envelope.kind == EnvelopeKind::kRaft) {
    // A compressed envelope is a snapshot chunk: it carries no entries.
    const std::string_view rest = bytes.substr(bytes.size() - r.remaining());
    Result<Message> message = version == kEnvelopeFormatVersion ? read_compressed_message(r, bytes)
                              : owner != nullptr               ? decode_message(rest, *owner)
                                                               : decode_message(rest);
    if (!message.is_ok()) return message.status();
    envelope.message = std::move(*message);
    return envelope;
  }
  if (!r.varint(envelope.request_id)) return bad("the request id");
  if (!r.string(envelope.payload)) return bad("the payload");
  if (!r.done()) {
    return Status::corruption(fmt::format("envelope: {} bytes follow the payload", r.remaining()));
  }
  return envelope;
}

}  // namespace

Result<Envelope> decode_envelope(std::string_view bytes) { return decode(bytes, nullptr); }

Result<Envelope> decode_envelope(std::string_view bytes,
                                 const std::shared_ptr<const std::string>& owner) {
  NN_ASSERT(owner != nullptr, "decode_envelope: a null owner");
  return decode(bytes, &owner);
}

}  // namespace nodenomad
