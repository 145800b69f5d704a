// The bytes of the metadata group: commands (Raft entries), results (apply's
// responses) and snapshots. All three are read back from disk or a peer, so
// every decoder reads untrusted bytes: each length and count is bounded by
// what remains of the input before anything is allocated.
//
// Notation: varint = unsigned LEB128 (raft/byte_io.hpp); str = varint length
// then the bytes; opt = u8 0, or u8 1 then a varint; ids = varint count then
// count x str.
//
// Command (a Raft entry's data):
//
//   offset 0          1          2
//          +----------+----------+---------------------------------------
//          | format   | type     | body, by type:
//          | u8 = 1   | u8       |
//          +----------+----------+---------------------------------------
//     kBootstrap            (1): str cluster_id | varint shard_count
//                                | varint replication_factor
//                                | varint member_count | member_count x (str id | str address)
//     kAddMember            (2): str id | str address
//     kRemoveMember         (3): str id
//     kSetMemberAddress     (4): str id | str address
//     kSetMemberState       (5): str id | u8 state (1 active, 2 leaving)
//     kUpdateShardPlacement (6): varint shard | varint expected_epoch | ids replicas | ids learners
//     kPutRecord           (32): str namespace | str key | str value | opt if_version
//     kDeleteRecord        (33): str namespace | str key | opt if_version
//   Types 7-31 and 34-63 are reserved for later membership/placement and
//   record commands. Nothing may follow the body.
//
// Result (StateMachine::apply's response):
//
//   u8 format = 1 | u8 status code | str message (empty when OK)
//   | varint shard_epoch | varint config_epoch | varint record_version
//
// Snapshot (the whole ClusterMetadata and the index it reflects):
//
//   offset 0        4          5
//          +--------+----------+------------------------------------------------+-----------+
//          | "NNMD" | format   | body                                           | checksum  |
//          |        | u8 = 1   |                                                | u64 LE    |
//          +--------+----------+------------------------------------------------+-----------+
//   body:  varint applied_index | u8 flags (bit 0: bootstrap_logged; others 0)
//          | str cluster_id | varint config_epoch | varint replication_factor
//          | varint shard_count | varint record_revision
//          | varint member_count | member_count x (str id | str address | u8 state)
//          | shard_count x (varint epoch | varint voter_count | voter_count x varint member
//          |                | varint learner_count | learner_count x varint member)
//          | varint record_count | record_count x (str namespace | str key | varint version
//          |                                      | str value)
//   checksum = XXH3_64bits(every byte before it), seed 0.
//   Members are in strict id order and placements name members by their
//   index in that order (2 bytes instead of a whole id: 65536 shards x 16
//   replicas stay ~2 MiB). Records are in strict (namespace, key) order.
//   Leader hints are not part of the state and are not written.
#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "nodenomad/sharding/cluster_metadata.hpp"
#include "raft/byte_io.hpp"

namespace nodenomad {

namespace metadata_detail {

using raft_io::ByteReader;
using raft_io::ByteWriter;

constexpr std::string_view kSnapshotMagic = "NNMD";
constexpr std::uint8_t kSnapshotFormat = 1;
constexpr std::uint8_t kResultFormat = 1;
constexpr std::size_t kChecksumBytes = 8;
constexpr std::uint8_t kFlagBootstrapLogged = 0x01;

// A ByteReader with a sticky error that names the first field it could not
// read and its offset, so decoders read straight through and check once.
class Decoder {
 public:
  // `base`: the offset of `bytes` in the whole input, for messages.
  Decoder(std::string_view bytes, std::string_view what, std::size_t base = 0)
      : in_(bytes), end_(base + bytes.size()), what_(what) {}

  bool ok() const { return error_.is_ok(); }
  std::size_t offset() const { return end_ - in_.remaining(); }
  std::size_t remaining() const { return in_.remaining(); }

  void fail(std::string_view why) {
    if (ok()) error_ = Status::corruption(fmt::format("{}: {} (offset {})", what_, why, offset()));
  }
  std::uint8_t u8(std::string_view field) {
    std::uint8_t v = 0;
    if (ok() && !in_.u8(v)) fail(fmt::format("{} is cut off", field));
    return v;
  }
  std::uint64_t varint(std::string_view field) {
    std::uint64_t v = 0;
    if (ok() && !in_.varint(v)) fail(fmt::format("{} is cut off or not a varint", field));
    return v;
  }
  std::uint32_t u32(std::string_view field) {
    const std::uint64_t v = varint(field);
    if (v > std::numeric_limits<std::uint32_t>::max()) fail(fmt::format("{} {} exceeds 32 bits", field, v));
    return ok() ? static_cast<std::uint32_t>(v) : 0;
  }
  std::string string(std::string_view field) {
    std::string s;
    if (ok() && !in_.string(s)) fail(fmt::format("{} is cut off", field));
    return s;
  }
  NodeId node_id(std::string_view field) { return NodeId(string(field)); }
  // A count of items of at least min_item_bytes (> 0) each, at most
  // `limit`: bounded by the bytes left before anything is allocated.
  std::uint64_t count(std::string_view field, std::size_t min_item_bytes, std::uint64_t limit) {
    const std::uint64_t n = varint(field);
    if (n > limit) fail(fmt::format("{} {} exceeds the limit {}", field, n, limit));
    if (n > in_.remaining() / min_item_bytes) {
      fail(fmt::format("{} {} cannot fit in the {} bytes left", field, n, in_.remaining()));
    }
    return ok() ? n : 0;
  }
  std::optional<std::uint64_t> optional_varint(std::string_view field) {
    const std::uint8_t present = u8(field);
    if (present > 1) fail(fmt::format("{} presence byte {} is not 0 or 1", field, present));
    if (!ok() || present == 0) return std::nullopt;
    return varint(field);
  }
  std::vector<NodeId> ids(std::string_view field) {
    std::vector<NodeId> out(count(field, 1, kMaxShardMembers));
    for (NodeId& id : out) id = node_id(field);
    return out;
  }
  Status finish() {
    if (ok() && !in_.done()) fail(fmt::format("{} bytes follow the end", in_.remaining()));
    return error_;
  }

 private:
  ByteReader in_;
  std::size_t end_;
  std::string_view what_;
  Status error_;
};

void put_optional(ByteWriter& out, const std::optional<std::uint64_t>& value) {
  out.u8(value.has_value() ? 1 : 0);
  if (value.has_value()) out.varint(*value);
}

void put_ids(ByteWriter& out, const std::vector<NodeId>& ids) {
  out.varint(ids.size());
  for (const NodeId& id : ids) out.bytes(id.str());
}

void encode_body(ByteWriter& out, const metadata::Bootstrap& c) {
  out.bytes(c.cluster_id);
  out.varint(c.shard_count);
  out.varint(c.replication_factor);
  out.varint(c.members.size());
  for (const Member& member : c.members) {
    out.bytes(member.id.str());
    out.bytes(member.address);
  }
}
void encode_body(ByteWriter& out, const metadata::AddMember& c) {
  out.bytes(c.id.str());
  out.bytes(c.address);
}
void encode_body(ByteWriter& out, const metadata::RemoveMember& c) { out.bytes(c.id.str()); }
void encode_body(ByteWriter& out, const metadata::SetMemberAddress& c) {
  out.bytes(c.id.str());
  out.bytes(c.address);
}
void encode_body(ByteWriter& out, const metadata::SetMemberState& c) {
  out.bytes(c.id.str());
  out.u8(static_cast<std::uint8_t>(c.state));
}
void encode_body(ByteWriter& out, const metadata::UpdateShardPlacement& c) {
  out.varint(c.shard.value());
  out.varint(c.expected_epoch.value());
  put_ids(out, c.replicas);
  put_ids(out, c.learners);
}
void encode_body(ByteWriter& out, const metadata::PutRecord& c) {
  out.bytes(c.record_namespace);
  out.bytes(c.key);
  out.bytes(c.value);
  put_optional(out, c.if_version);
}
void encode_body(ByteWriter& out, const metadata::DeleteRecord& c) {
  out.bytes(c.record_namespace);
  out.bytes(c.key);
  put_optional(out, c.if_version);
}

metadata::Bootstrap decode_bootstrap(Decoder& in) {
  metadata::Bootstrap c;
  c.cluster_id = in.string("cluster_id");
  c.shard_count = in.u32("shard_count");
  c.replication_factor = in.u32("replication_factor");
  c.members.resize(in.count("member_count", 2, kMaxMembers));
  for (Member& member : c.members) {
    member.id = in.node_id("member id");
    member.address = in.string("member address");
  }
  return c;
}

MemberState decode_state(Decoder& in) {
  const std::uint8_t state = in.u8("member state");
  if (state != static_cast<std::uint8_t>(MemberState::kActive) &&
      state != static_cast<std::uint8_t>(MemberState::kLeaving)) {
    in.fail(fmt::format("member state {} is unknown", state));
  }
  return static_cast<MemberState>(state);
}

// The body of a command of a known type; nullopt for a type this version
// does not know.
std::optional<MetadataCommand> decode_body(Decoder& in, std::uint8_t type) {
  switch (static_cast<MetadataCommandType>(type)) {
    case MetadataCommandType::kBootstrap: return decode_bootstrap(in);
    case MetadataCommandType::kAddMember: {
      NodeId id = in.node_id("id");
      return metadata::AddMember{std::move(id), in.string("address")};
    }
    case MetadataCommandType::kRemoveMember: return metadata::RemoveMember{in.node_id("id")};
    case MetadataCommandType::kSetMemberAddress: {
      NodeId id = in.node_id("id");
      return metadata::SetMemberAddress{std::move(id), in.string("address")};
    }
    case MetadataCommandType::kSetMemberState: {
      NodeId id = in.node_id("id");
      return metadata::SetMemberState{std::move(id), decode_state(in)};
    }
    case MetadataCommandType::kUpdateShardPlacement: {
      metadata::UpdateShardPlacement c;
      c.shard = ShardId(in.u32("shard"));
      c.expected_epoch = Epoch(in.varint("expected_epoch"));
      c.replicas = in.ids("replica_count");
      c.learners = in.ids("learner_count");
      return c;
    }
    case MetadataCommandType::kPutRecord: {
      metadata::PutRecord c;
      c.record_namespace = in.string("namespace");
      c.key = in.string("key");
      c.value = in.string("value");
      c.if_version = in.optional_varint("if_version");
      return c;
    }
    case MetadataCommandType::kDeleteRecord: {
      metadata::DeleteRecord c;
      c.record_namespace = in.string("namespace");
      c.key = in.string("key");
      c.if_version = in.optional_varint("if_version");
      return c;
    }
  }
  return std::nullopt;
}

// The encoding of the state itself; a friend of ClusterMetadata.
struct SnapshotCodec {
  static void encode(const ClusterMetadata& m, ByteWriter& out);
  static Status decode(Decoder& in, ClusterMetadata& m);
  static std::vector<ShardPlacement> decode_placements(Decoder& in, std::uint32_t shard_count,
                                                       const std::vector<Member>& members);
  static void decode_members(Decoder& in, ClusterMetadata& m);
  static void decode_records(Decoder& in, ClusterMetadata& m);
};

void SnapshotCodec::encode(const ClusterMetadata& m, ByteWriter& out) {
  out.u8(m.bootstrap_logged_ ? kFlagBootstrapLogged : 0);
  out.bytes(m.cluster_id_);
  out.varint(m.config_epoch_);
  out.varint(m.shard_map_.replication_factor());
  out.varint(m.shard_map_.shard_count());
  out.varint(m.record_revision_);
  out.varint(m.members_.size());
  for (const Member& member : m.members_) {
    out.bytes(member.id.str());
    out.bytes(member.address);
    out.u8(static_cast<std::uint8_t>(member.state));
  }
  const auto index_of = [&m](const NodeId& id) {
    const Member* member = m.find_member(id);
    NN_ASSERT(member != nullptr, "snapshot of a placement naming non-member ", id);
    return static_cast<std::uint64_t>(member - m.members_.data());
  };
  for (const ShardPlacement& placement : m.shard_map_.placements()) {
    out.varint(placement.epoch.value());
    for (const std::vector<NodeId>* list : {&placement.replicas, &placement.learners}) {
      out.varint(list->size());
      for (const NodeId& id : *list) out.varint(index_of(id));
    }
  }
  out.varint(m.records_.size());
  for (const auto& [key, record] : m.records_) {
    out.bytes(key.record_namespace);
    out.bytes(key.key);
    out.varint(record.version);
    out.bytes(record.value);
  }
}

std::vector<ShardPlacement> SnapshotCodec::decode_placements(Decoder& in,
                                                             std::uint32_t shard_count,
                                                             const std::vector<Member>& members) {
  std::vector<ShardPlacement> placements;
  // Each placement takes at least 4 bytes (epoch, two counts, one voter).
  if (shard_count > in.remaining() / 4) in.fail(fmt::format("{} shards cannot fit", shard_count));
  if (!in.ok()) return placements;
  placements.resize(shard_count);
  for (ShardPlacement& placement : placements) {
    placement.epoch = Epoch(in.varint("shard epoch"));
    for (std::vector<NodeId>* list : {&placement.replicas, &placement.learners}) {
      list->resize(in.count("shard member count", 1, kMaxShardMembers));
      for (NodeId& id : *list) {
        const std::uint64_t index = in.varint("shard member index");
        if (in.ok() && index >= members.size()) {
          in.fail(fmt::format("member index {} of {} members", index, members.size()));
        }
        if (!in.ok()) return placements;
        id = members[static_cast<std::size_t>(index)].id;
      }
    }
  }
  return placements;
}

void SnapshotCodec::decode_records(Decoder& in, ClusterMetadata& m) {
  const std::uint64_t count = in.count("record_count", 4, kMaxRecordCount);
  for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
    RecordKey key{in.string("record namespace"), in.string("record key")};
    MetadataRecord record;
    record.version = in.varint("record version");
    record.value = in.string("record value");
    if (!in.ok()) return;
    if (!m.records_.empty() && !(m.records_.rbegin()->first < key)) {
      in.fail("records are not in strict (namespace, key) order");
      return;
    }
    m.record_bytes_ += key.record_namespace.size() + key.key.size() + record.value.size();
    m.records_.emplace_hint(m.records_.end(), std::move(key), std::move(record));
  }
}

void SnapshotCodec::decode_members(Decoder& in, ClusterMetadata& m) {
  // A member takes at least 3 bytes (two lengths and a state).
  m.members_.resize(in.count("member_count", 3, kMaxMembers));
  for (Member& member : m.members_) {
    member.id = in.node_id("member id");
    member.address = in.string("member address");
    member.state = decode_state(in);
  }
}

Status SnapshotCodec::decode(Decoder& in, ClusterMetadata& m) {
  const std::uint8_t flags = in.u8("flags");
  if ((flags & ~kFlagBootstrapLogged) != 0) in.fail(fmt::format("unknown flags {:#04x}", flags));
  m.bootstrap_logged_ = (flags & kFlagBootstrapLogged) != 0;
  m.cluster_id_ = in.string("cluster_id");
  m.config_epoch_ = in.varint("config_epoch");
  const std::uint32_t replication_factor = in.u32("replication_factor");
  const std::uint32_t shard_count = in.u32("shard_count");
  m.record_revision_ = in.varint("record_revision");
  if (shard_count > kMaxShardCount) {
    in.fail(fmt::format("shard_count {} exceeds kMaxShardCount ({})", shard_count, kMaxShardCount));
  }
  decode_members(in, m);
  std::vector<ShardPlacement> placements = decode_placements(in, shard_count, m.members_);
  decode_records(in, m);
  NN_RETURN_IF_ERROR(in.finish());
  if (shard_count > 0) {
    Result<ShardMap> map = ShardMap::from_placements(replication_factor, std::move(placements));
    if (!map.is_ok()) {
      return Status::corruption(fmt::format("metadata snapshot: {}", map.status().message()));
    }
    m.shard_map_ = std::move(map).value();
  } else if (replication_factor != 0) {
    return Status::corruption("metadata snapshot: a replication factor without any shard");
  }
  const Status valid = m.validate();
  if (!valid.is_ok()) return Status::corruption(fmt::format("metadata snapshot: {}", valid.message()));
  return Status::ok();
}

}  // namespace metadata_detail

using metadata_detail::ByteWriter;
using metadata_detail::Decoder;

MetadataCommandType command_type(const MetadataCommand& command) {
  // In the order of the MetadataCommand variant's alternatives.
  static constexpr MetadataCommandType kTypes[] = {
      MetadataCommandType::kBootstrap,        MetadataCommandType::kAddMember,
      MetadataCommandType::kRemoveMember,     MetadataCommandType::kSetMemberAddress,
      MetadataCommandType::kSetMemberState,   MetadataCommandType::kUpdateShardPlacement,
      MetadataCommandType::kPutRecord,        MetadataCommandType::kDeleteRecord};
  static_assert(std::size(kTypes) == std::variant_size_v<MetadataCommand>);
  return kTypes[command.index()];
}

std::string encode_metadata_command(const MetadataCommand& command) {
  std::string out;
  ByteWriter writer(out);
  writer.u8(kMetadataCommandFormat);
  writer.u8(static_cast<std::uint8_t>(command_type(command)));
  std::visit([&writer](const auto& body) { metadata_detail::encode_body(writer, body); }, command);
  return out;
}

Result<MetadataCommand> decode_metadata_command(std::string_view bytes) {
  Decoder in(bytes, "metadata command");
  const std::uint8_t format = in.u8("format");
  if (in.ok() && format != kMetadataCommandFormat) {
    in.fail(fmt::format("format {} is unknown; this version reads format {}", format,
                        kMetadataCommandFormat));
  }
  const std::uint8_t type = in.u8("type");
  if (!in.ok()) return in.finish();
  std::optional<MetadataCommand> command = metadata_detail::decode_body(in, type);
  if (!command.has_value()) {
    return Status::not_supported(
        fmt::format("metadata command type {} is unknown to this version", type));
  }
  NN_RETURN_IF_ERROR(in.finish());
  return std::move(*command);
}

std::string encode_metadata_result(const MetadataResult& result) {
  std::string out;
  ByteWriter writer(out);
  writer.u8(metadata_detail::kResultFormat);
  writer.u8(static_cast<std::uint8_t>(result.status.code()));
  writer.bytes(result.status.message());
  writer.varint(result.shard_epoch.value());
  writer.varint(result.config_epoch);
  writer.varint(result.record_version);
  return out;
}

Result<MetadataResult> decode_metadata_result(std::string_view bytes) {
  Decoder in(bytes, "metadata result");
  const std::uint8_t format = in.u8("format");
  if (in.ok() && format != metadata_detail::kResultFormat) {
    in.fail(fmt::format("format {} is unknown", format));
  }
  const std::uint8_t code = in.u8("status code");
  std::string message = in.string("message");
  if (code > static_cast<std::uint8_t>(StatusCode::kAborted)) {
    in.fail(fmt::format("status code {} is unknown", code));
  }
  if (code == 0 && !message.empty()) in.fail("an OK result carries a message");
  MetadataResult result;
  result.shard_epoch = Epoch(in.varint("shard_epoch"));
  result.config_epoch = in.varint("config_epoch");
  result.record_version = in.varint("record_version");
  NN_RETURN_IF_ERROR(in.finish());
  if (code != 0) result.status = Status(static_cast<StatusCode>(code), std::move(message));
  return result;
}

std::string encode_metadata_snapshot(LogIndex applied_index, const ClusterMetadata& metadata) {
  std::string out(metadata_detail::kSnapshotMagic);
  ByteWriter writer(out);
  writer.u8(metadata_detail::kSnapshotFormat);
  writer.varint(applied_index.value());
  metadata_detail::SnapshotCodec::encode(metadata, writer);
  const std::uint64_t checksum = XXH3_64bits(out.data(), out.size());
  for (std::size_t i = 0; i < metadata_detail::kChecksumBytes; ++i) {
    out.push_back(static_cast<char>((checksum >> (8 * i)) & 0xff));
  }
  NN_ASSERT(out.size() <= kMaxMetadataSnapshotBytes, "a metadata snapshot of ", out.size(),
            " bytes: the state limits should keep it under kMaxMetadataSnapshotBytes");
  return out;
}

Result<MetadataSnapshot> decode_metadata_snapshot(std::string_view bytes) {
  constexpr std::size_t kMagicBytes = metadata_detail::kSnapshotMagic.size();
  constexpr std::size_t kChecksumBytes = metadata_detail::kChecksumBytes;
  if (bytes.size() < kMagicBytes + 1 + kChecksumBytes) {
    return Status::corruption(
        fmt::format("metadata snapshot of {} bytes is too short to be one", bytes.size()));
  }
  if (bytes.size() > kMaxMetadataSnapshotBytes) {
    return Status::corruption(fmt::format("metadata snapshot of {} bytes exceeds {} "
                                          "(kMaxMetadataSnapshotBytes)",
                                          bytes.size(), kMaxMetadataSnapshotBytes));
  }
  if (bytes.substr(0, kMagicBytes) != metadata_detail::kSnapshotMagic) {
    return Status::corruption("not a metadata snapshot: the magic \"NNMD\" is missing");
  }
  const std::string_view covered = bytes.substr(0, bytes.size() - kChecksumBytes);
  std::uint64_t stored = 0;
  for (std::size_t i = 0; i < kChecksumBytes; ++i) {
    stored |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(bytes[covered.size() + i]))
              << (8 * i);
  }
  const std::uint64_t computed = XXH3_64bits(covered.data(), covered.size());
  if (stored != computed) {
    return Status::corruption(fmt::format(
        "metadata snapshot checksum mismatch: stored {:#018x}, computed {:#018x} over {} bytes",
        stored, computed, covered.size()));
  }
  Decoder in(covered.substr(kMagicBytes), "metadata snapshot", kMagicBytes);
  const std::uint8_t format = in.u8("format");
  if (in.ok() && format != metadata_detail::kSnapshotFormat) {
    in.fail(fmt::format("format {} is unknown; this version reads format {}", format,
                        metadata_detail::kSnapshotFormat));
  }
  MetadataSnapshot snapshot;
  snapshot.applied_index = LogIndex(in.varint("applied_index"));
  NN_RETURN_IF_ERROR(metadata_detail::SnapshotCodec::decode(in, snapshot.metadata));
  return snapshot;
}

}  // namespace nodenomad
