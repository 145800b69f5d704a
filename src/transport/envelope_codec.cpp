// The Envelope encoding (layout drawn in nodenomad/transport.hpp).
#include <fmt/format.h>

#include "nodenomad/raft/message_codec.hpp"
#include "nodenomad/transport.hpp"
#include "raft/byte_io.hpp"

namespace nodenomad {

void encode_envelope_to(const Envelope& envelope, std::string& out) {
  raft_io::ByteWriter w(out);
  w.u8(kEnvelopeFormatVersion);
  w.u8(static_cast<std::uint8_t>(envelope.kind));
  w.bytes(envelope.from.str());
  w.bytes(envelope.to.str());
  w.varint(envelope.group.value());
  if (envelope.kind == EnvelopeKind::kRaft) {
    encode_message_to(envelope.message, out);
    return;
  }
  w.varint(envelope.request_id);
  w.bytes(envelope.payload);
}

std::string encode_envelope(const Envelope& envelope) {
  std::string out;
  encode_envelope_to(envelope, out);
  return out;
}

namespace {

Status bad(std::string_view what) {
  return Status::corruption(fmt::format("envelope: {} is missing or malformed", what));
}

}  // namespace

Result<Envelope> decode_envelope(std::string_view bytes) {
  raft_io::ByteReader r(bytes);
  std::uint8_t version = 0;
  if (!r.u8(version)) return bad("the version byte");
  if (version != kEnvelopeFormatVersion) {
    return Status::corruption(fmt::format("envelope: format version {} is not the supported {}",
                                          version, kEnvelopeFormatVersion));
  }
  std::uint8_t kind = 0;
  if (!r.u8(kind)) return bad("the kind byte");
  if (kind < 1 || kind > 3) {
    return Status::corruption(fmt::format("envelope: kind {} is not 1 (raft), 2 (request) or 3 "
                                          "(response)", kind));
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
    const std::size_t offset = bytes.size() - r.remaining();
    Result<Message> message = decode_message(bytes.substr(offset));
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

}  // namespace nodenomad
