// The KvCommand and WriteResult codecs; the layouts are drawn in
// include/nodenomad/storage/command.hpp.
#include "nodenomad/storage/command.hpp"

#include <fmt/format.h>

#include "storage/byte_codec.hpp"

namespace nodenomad {
namespace {

using storage::ByteReader;

constexpr std::uint8_t kFlagHasExpiry = 1u << 0;
constexpr std::uint8_t kFlagHasIfVersion = 1u << 1;
// The smallest expiry target: a version and an empty key's length.
constexpr std::size_t kMinExpireTargetBytes = 8 + 4;
constexpr std::uint8_t kWriteResultFormat = 1;
constexpr std::uint8_t kMaxStatusCode = static_cast<std::uint8_t>(StatusCode::kAborted);

std::int64_t to_ms(WallTime t) { return t.time_since_epoch().count(); }
WallTime from_ms(std::int64_t ms) { return WallTime{std::chrono::milliseconds{ms}}; }

Status bad(std::string_view what, const ByteReader& reader) {
  return Status::corruption(
      fmt::format("kv command: {} at offset {}", what, reader.position()));
}

Status decode_set_or_remove(ByteReader& reader, std::uint8_t flags, KvCommand& cmd) {
  if ((flags & kFlagHasIfVersion) != 0) {
    std::uint64_t v = 0;
    if (!reader.read_u64(v)) return bad("truncated if_version", reader);
    cmd.if_version = v;
  }
  if ((flags & kFlagHasExpiry) != 0) {
    std::int64_t ms = 0;
    if (!reader.read_i64(ms)) return bad("truncated expiry", reader);
    cmd.expiry = from_ms(ms);
  }
  if (!reader.read_sized(cmd.key)) return bad("key length past the end", reader);
  if (cmd.type == KvCommandType::kSet && !reader.read_sized(cmd.value)) {
    return bad("value length past the end", reader);
  }
  return Status::ok();
}

Status decode_expire(ByteReader& reader, KvCommand& cmd) {
  std::uint32_t count = 0;
  if (!reader.read_u32(count)) return bad("truncated expire count", reader);
  // Checked before reserving, so a forged count cannot allocate beyond the input.
  if (count > kMaxExpireTargetsPerCommand || count > reader.remaining() / kMinExpireTargetBytes) {
    return bad(fmt::format("expire count {} larger than the command", count), reader);
  }
  cmd.expire_targets.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    ExpireTarget target;
    if (!reader.read_u64(target.version) || !reader.read_sized(target.key)) {
      return bad(fmt::format("expire target {} truncated", i), reader);
    }
    cmd.expire_targets.push_back(target);
  }
  return Status::ok();
}

}  // namespace

void encode_kv_command(const KvCommand& cmd, std::string& out) {
  NN_ASSERT(cmd.key.size() <= UINT32_MAX && cmd.value.size() <= UINT32_MAX,
            "key or value over 4 GiB cannot be encoded");
  NN_ASSERT(cmd.expire_targets.size() <= kMaxExpireTargetsPerCommand, "too many expire targets: ",
            cmd.expire_targets.size());
  std::uint8_t flags = 0;
  if (cmd.type == KvCommandType::kSet && cmd.expiry) flags |= kFlagHasExpiry;
  if (cmd.type != KvCommandType::kExpire && cmd.if_version) flags |= kFlagHasIfVersion;
  storage::put_u8(out, kKvCommandFormat);
  storage::put_u8(out, static_cast<std::uint8_t>(cmd.type));
  storage::put_u8(out, flags);
  storage::put_i64(out, to_ms(cmd.issued_at));
  if (cmd.type == KvCommandType::kExpire) {
    storage::put_u32(out, static_cast<std::uint32_t>(cmd.expire_targets.size()));
    for (const ExpireTarget& t : cmd.expire_targets) {
      storage::put_u64(out, t.version);
      storage::put_sized(out, t.key);
    }
    return;
  }
  if ((flags & kFlagHasIfVersion) != 0) storage::put_u64(out, *cmd.if_version);
  if ((flags & kFlagHasExpiry) != 0) storage::put_i64(out, to_ms(*cmd.expiry));
  storage::put_sized(out, cmd.key);
  if (cmd.type == KvCommandType::kSet) storage::put_sized(out, cmd.value);
}

std::string encode_kv_command(const KvCommand& command) {
  std::string out;
  encode_kv_command(command, out);
  return out;
}

Result<KvCommand> decode_kv_command(std::string_view bytes) {
  ByteReader reader(bytes);
  std::uint8_t format = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::int64_t issued_ms = 0;
  if (!reader.read_u8(format) || !reader.read_u8(type) || !reader.read_u8(flags) ||
      !reader.read_i64(issued_ms)) {
    return bad("truncated header", reader);
  }
  if (format != kKvCommandFormat) return bad(fmt::format("unknown format {}", format), reader);
  KvCommand cmd;
  cmd.issued_at = from_ms(issued_ms);
  switch (type) {
    case static_cast<std::uint8_t>(KvCommandType::kSet):
      cmd.type = KvCommandType::kSet;
      if ((flags & ~(kFlagHasExpiry | kFlagHasIfVersion)) != 0) return bad("unknown flags", reader);
      NN_RETURN_IF_ERROR(decode_set_or_remove(reader, flags, cmd));
      break;
    case static_cast<std::uint8_t>(KvCommandType::kRemove):
      cmd.type = KvCommandType::kRemove;
      if ((flags & ~kFlagHasIfVersion) != 0) return bad("unknown flags", reader);
      NN_RETURN_IF_ERROR(decode_set_or_remove(reader, flags, cmd));
      break;
    case static_cast<std::uint8_t>(KvCommandType::kExpire):
      cmd.type = KvCommandType::kExpire;
      if (flags != 0) return bad("unknown flags", reader);
      NN_RETURN_IF_ERROR(decode_expire(reader, cmd));
      break;
    default:
      return bad(fmt::format("unknown command type {}", type), reader);
  }
  if (!reader.done()) return bad("trailing bytes", reader);
  return cmd;
}

std::string encode_write_result(const WriteResult& result) {
  std::string out;
  storage::put_u8(out, kWriteResultFormat);
  storage::put_u8(out, static_cast<std::uint8_t>(result.status.code()));
  storage::put_u64(out, result.version);
  storage::put_u64(out, result.current_version);
  storage::put_u8(out, result.deleted ? 1 : 0);
  storage::put_sized(out, result.status.message());
  storage::put_u32(out, static_cast<std::uint32_t>(result.expired_keys.size()));
  for (const std::string& key : result.expired_keys) storage::put_sized(out, key);
  return out;
}

Result<WriteResult> decode_write_result(std::string_view bytes) {
  ByteReader reader(bytes);
  std::uint8_t format = 0;
  std::uint8_t code = 0;
  std::uint8_t deleted = 0;
  std::string_view message;
  WriteResult result;
  if (!reader.read_u8(format) || !reader.read_u8(code) || !reader.read_u64(result.version) ||
      !reader.read_u64(result.current_version) || !reader.read_u8(deleted) ||
      !reader.read_sized(message)) {
    return Status::corruption("write result: truncated");
  }
  if (format != kWriteResultFormat || code > kMaxStatusCode || deleted > 1) {
    return Status::corruption("write result: unknown format, status code or flag");
  }
  std::uint32_t count = 0;
  if (!reader.read_u32(count) || count > reader.remaining() / 4) {
    return Status::corruption("write result: expired key count larger than the response");
  }
  result.expired_keys.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string_view key;
    if (!reader.read_sized(key)) return Status::corruption("write result: truncated key");
    result.expired_keys.emplace_back(key);
  }
  if (!reader.done()) return Status::corruption("write result: trailing bytes");
  result.deleted = deleted == 1;
  if (code != 0) result.status = Status(static_cast<StatusCode>(code), std::string(message));
  return result;
}

}  // namespace nodenomad
