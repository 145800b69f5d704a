#include "nodenomad/raft/message_codec.hpp"

#include <fmt/format.h>

#include "nodenomad/assert.hpp"
#include "raft/byte_io.hpp"

namespace nodenomad {

using raft_io::ByteReader;
using raft_io::ByteWriter;
using Owner = std::shared_ptr<const std::string>;

std::string_view message_type_name(MessageType type) {
  switch (type) {
    case MessageType::kPreVote: return "pre_vote";
    case MessageType::kPreVoteResponse: return "pre_vote_response";
    case MessageType::kVote: return "vote";
    case MessageType::kVoteResponse: return "vote_response";
    case MessageType::kAppend: return "append";
    case MessageType::kAppendResponse: return "append_response";
    case MessageType::kHeartbeat: return "heartbeat";
    case MessageType::kHeartbeatResponse: return "heartbeat_response";
    case MessageType::kSnapshot: return "snapshot";
    case MessageType::kSnapshotResponse: return "snapshot_response";
    case MessageType::kTimeoutNow: return "timeout_now";
    case MessageType::kReadIndex: return "read_index";
    case MessageType::kReadIndexResponse: return "read_index_response";
  }
  return "unknown";
}

bool is_response(MessageType type) {
  switch (type) {
    case MessageType::kPreVoteResponse:
    case MessageType::kVoteResponse:
    case MessageType::kAppendResponse:
    case MessageType::kHeartbeatResponse:
    case MessageType::kSnapshotResponse:
      return true;
    default:
      return false;
  }
}

namespace {

constexpr std::uint8_t kFlagReject = 1u << 0;
constexpr std::uint8_t kFlagTransfer = 1u << 1;
constexpr std::uint8_t kFlagSnapshotLast = 1u << 2;
constexpr std::uint8_t kFlagHasSnapshot = 1u << 3;
constexpr std::uint8_t kKnownFlags = kFlagReject | kFlagTransfer | kFlagSnapshotLast | kFlagHasSnapshot;

// The smallest encodings, which bound how many items a count may announce.
constexpr std::size_t kMinEntryBytes = 4;   // term, index, type, empty data
// At most: term and index varints (10 each), type, the data's length varint.
constexpr std::size_t kMaxEntryOverheadBytes = 10 + 10 + 1 + 10;
// At most: version, type, flags, two id lengths, seven varints, the
// context's length and the entry count.
constexpr std::size_t kMaxHeaderBytes = 3 + 2 * 10 + 7 * 10 + 10 + 10;
constexpr std::size_t kMinNodeIdBytes = 1;  // an empty name's length

bool has_snapshot(const Message& m) {
  return m.snapshot != SnapshotChunk{};
}

void write_nodes(ByteWriter& w, const std::vector<NodeId>& nodes) {
  w.varint(nodes.size());
  for (const NodeId& node : nodes) w.bytes(node.str());
}

void write_snapshot(ByteWriter& w, const SnapshotChunk& chunk) {
  w.varint(chunk.meta.index.value());
  w.varint(chunk.meta.term.value());
  const ConfState& cs = chunk.meta.conf_state;
  write_nodes(w, cs.voters);
  write_nodes(w, cs.learners);
  write_nodes(w, cs.voters_outgoing);
  write_nodes(w, cs.learners_next);
  w.u8(cs.auto_leave ? 1 : 0);
  w.varint(chunk.transfer_id);
  w.varint(chunk.offset);
  w.bytes(chunk.data);
}

bool read_node(ByteReader& r, NodeId& node) {
  std::string name;
  if (!r.string(name)) return false;
  node = NodeId(std::move(name));
  return true;
}

bool read_nodes(ByteReader& r, std::vector<NodeId>& nodes) {
  std::uint64_t n = 0;
  if (!r.count(n, kMinNodeIdBytes)) return false;
  nodes.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    NodeId node;
    if (!read_node(r, node)) return false;
    nodes.push_back(std::move(node));
  }
  return true;
}

template <typename CounterT>
bool read_counter(ByteReader& r, CounterT& out) {
  std::uint64_t v = 0;
  if (!r.varint(v)) return false;
  out = CounterT(v);
  return true;
}

bool read_snapshot(ByteReader& r, SnapshotChunk& chunk) {
  ConfState& cs = chunk.meta.conf_state;
  std::uint8_t auto_leave = 0;
  if (!read_counter(r, chunk.meta.index) || !read_counter(r, chunk.meta.term) ||
      !read_nodes(r, cs.voters) || !read_nodes(r, cs.learners) ||
      !read_nodes(r, cs.voters_outgoing) || !read_nodes(r, cs.learners_next) ||
      !r.u8(auto_leave) || auto_leave > 1) {
    return false;
  }
  cs.auto_leave = auto_leave == 1;
  return r.varint(chunk.transfer_id) && r.varint(chunk.offset) && r.string(chunk.data);
}

// The entries' data are slices of `*owner` when it is given (the bytes read
// lie in it), else copies.
bool read_entries(ByteReader& r, std::vector<Entry>& entries, const Owner* owner) {
  std::uint64_t n = 0;
  if (!r.count(n, kMinEntryBytes)) return false;
  entries.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    Entry e;
    std::uint8_t type = 0;
    std::string_view data;
    if (!read_counter(r, e.term) || !read_counter(r, e.index) || !r.u8(type) ||
        type > static_cast<std::uint8_t>(EntryType::kConfChange) || !r.bytes(data)) {
      return false;
    }
    e.type = static_cast<EntryType>(type);
    e.data = owner != nullptr ? SharedBytes::slice(*owner, data) : SharedBytes(data);
    entries.push_back(std::move(e));
  }
  return true;
}

// Reads everything after the three header bytes.
bool read_body(ByteReader& r, Message& m, std::uint8_t flags, const Owner* owner) {
  if (!read_node(r, m.from) || !read_node(r, m.to) || !read_counter(r, m.term) ||
      !read_counter(r, m.index) || !read_counter(r, m.log_term) || !read_counter(r, m.commit) ||
      !read_counter(r, m.hint_index) || !read_counter(r, m.hint_term) || !r.varint(m.round) ||
      !r.string(m.context) || !read_entries(r, m.entries, owner)) {
    return false;
  }
  if ((flags & kFlagHasSnapshot) != 0 && !read_snapshot(r, m.snapshot)) return false;
  m.snapshot.last = (flags & kFlagSnapshotLast) != 0;
  return true;
}

}  // namespace

void encode_message_to(const Message& m, std::string& out) {
  // An append of a megabyte of entries grown by doubling would copy it all
  // once more (and fault in each larger buffer): reserve what the entries
  // need, with room for their varints and the header's.
  std::size_t entry_bytes = 0;
  for (const Entry& e : m.entries) entry_bytes += e.data.size() + kMaxEntryOverheadBytes;
  out.reserve(out.size() + kMaxHeaderBytes + m.from.str().size() + m.to.str().size() +
              m.context.size() + entry_bytes);
  ByteWriter w(out);
  const bool snapshot = has_snapshot(m);
  std::uint8_t flags = 0;
  if (m.reject) flags |= kFlagReject;
  if (m.transfer) flags |= kFlagTransfer;
  if (m.snapshot.last) flags |= kFlagSnapshotLast;
  if (snapshot) flags |= kFlagHasSnapshot;
  w.u8(kMessageFormatVersion);
  w.u8(static_cast<std::uint8_t>(m.type));
  w.u8(flags);
  w.bytes(m.from.str());
  w.bytes(m.to.str());
  w.varint(m.term.value());
  w.varint(m.index.value());
  w.varint(m.log_term.value());
  w.varint(m.commit.value());
  w.varint(m.hint_index.value());
  w.varint(m.hint_term.value());
  w.varint(m.round);
  w.bytes(m.context);
  w.varint(m.entries.size());
  for (const Entry& e : m.entries) {
    w.varint(e.term.value());
    w.varint(e.index.value());
    w.u8(static_cast<std::uint8_t>(e.type));
    w.bytes(e.data);
  }
  if (snapshot) write_snapshot(w, m.snapshot);
}

std::string encode_message(const Message& message) {
  std::string out;
  encode_message_to(message, out);
  return out;
}

namespace {

Result<Message> decode(std::string_view bytes, const Owner* owner) {
  ByteReader r(bytes);
  std::uint8_t version = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  if (!r.u8(version) || !r.u8(type) || !r.u8(flags)) {
    return Status::corruption(fmt::format("raft message of {} bytes: shorter than its header",
                                          bytes.size()));
  }
  if (version != kMessageFormatVersion) {
    return Status::corruption(fmt::format("raft message: unknown format version {}", version));
  }
  if (type == 0 || type > kMaxMessageType) {
    return Status::corruption(fmt::format("raft message: unknown type {}", type));
  }
  if ((flags & ~kKnownFlags) != 0) {
    return Status::corruption(fmt::format("raft message: unknown flags {:#x}", flags));
  }
  Message m;
  m.type = static_cast<MessageType>(type);
  m.reject = (flags & kFlagReject) != 0;
  m.transfer = (flags & kFlagTransfer) != 0;
  if (!read_body(r, m, flags, owner)) {
    return Status::corruption(fmt::format("raft {} message of {} bytes: truncated or malformed",
                                          message_type_name(m.type), bytes.size()));
  }
  if (!r.done()) {
    return Status::corruption(fmt::format("raft {} message: {} bytes follow the message",
                                          message_type_name(m.type), r.remaining()));
  }
  return m;
}

}  // namespace

Result<Message> decode_message(std::string_view bytes) { return decode(bytes, nullptr); }

Result<Message> decode_message(std::string_view bytes, const Owner& owner) {
  NN_ASSERT(owner != nullptr, "decode_message: a null owner");
  return decode(bytes, &owner);
}

}  // namespace nodenomad
