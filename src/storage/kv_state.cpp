#include "storage/kv_state.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace nodenomad::storage {
namespace {

WriteResult mismatch(std::uint64_t current, std::uint64_t expected) {
  WriteResult result;
  result.status = Status::version_mismatch(
      fmt::format("the key is at version {}, not at if_version {}{}", current, expected,
                  current == 0 ? " (0 means absent)" : ""));
  result.current_version = current;
  return result;
}

}  // namespace

Status check_kv_limits(const KvLimits& limits, std::string_view key, std::string_view value) {
  if (key.empty()) {
    return Status::invalid_argument(
        fmt::format("key is empty; keys are 1 to {} bytes (max_key_bytes)", limits.max_key_bytes));
  }
  if (key.size() > limits.max_key_bytes) {
    return Status::invalid_argument(fmt::format(
        "key of {} bytes is over the max_key_bytes limit of {} bytes", key.size(),
        limits.max_key_bytes));
  }
  if (value.size() > limits.max_value_bytes) {
    return Status::invalid_argument(fmt::format(
        "value of {} bytes is over the max_value_bytes limit of {} bytes", value.size(),
        limits.max_value_bytes));
  }
  return Status::ok();
}

WriteResult KvState::apply(const KvCommand& command) {
  switch (command.type) {
    case KvCommandType::kSet: return apply_set(command);
    case KvCommandType::kRemove: return apply_remove(command);
    case KvCommandType::kExpire: return apply_expire(command);
  }
  NN_UNREACHABLE("unknown command type ", static_cast<int>(command.type));
}

WriteResult KvState::apply_set(const KvCommand& command) {
  WriteResult result;
  result.status = check_limits(command.key, command.value);
  if (!result.ok()) return result;
  const std::int64_t now_ms = to_ms(command.issued_at);
  const KvMap::Spot spot = map_.locate(command.key);
  const Record* previous = spot.record();
  const bool live = previous != nullptr && !previous->expired_at(now_ms);
  const std::uint64_t current = live ? previous->version() : 0;
  if (command.if_version && *command.if_version != current) {
    return mismatch(current, *command.if_version);
  }
  // A live key counts on from its own version; an absent or expired one
  // starts above everything ever removed, so no old version comes back.
  const std::uint64_t base =
      live ? current : std::max(version_floor_, previous != nullptr ? previous->version() : 0);
  NN_ASSERT(base < UINT64_MAX, "version counter exhausted");
  result.version = base + 1;
  map_.put(spot, RecordRef::adopt(Record::create(command.key, command.value, result.version,
                                                 command.expiry.has_value(),
                                                 command.expiry ? to_ms(*command.expiry) : 0)));
  return result;
}

WriteResult KvState::apply_remove(const KvCommand& command) {
  WriteResult result;
  result.status = check_limits(command.key, {});
  if (!result.ok()) return result;
  const std::int64_t now_ms = to_ms(command.issued_at);
  const KvMap::Spot spot = map_.locate(command.key);
  const Record* previous = spot.record();
  const bool live = previous != nullptr && !previous->expired_at(now_ms);
  const std::uint64_t current = live ? previous->version() : 0;
  if (command.if_version && *command.if_version != current) {
    return mismatch(current, *command.if_version);
  }
  if (previous != nullptr) {
    raise_floor(previous->version());
    map_.erase(spot);
  }
  result.deleted = live;
  result.version = current;
  return result;
}

WriteResult KvState::apply_expire(const KvCommand& command) {
  WriteResult result;
  const std::int64_t now_ms = to_ms(command.issued_at);
  for (const ExpireTarget& target : command.expire_targets) {
    const KvMap::Spot spot = map_.locate(target.key);
    const Record* record = spot.record();
    // Same version and still expired: a write that raced with the proposal
    // made a new version (or a new TTL) and must survive.
    if (record == nullptr || record->version() != target.version || !record->expired_at(now_ms)) {
      continue;
    }
    raise_floor(record->version());
    result.expired_keys.emplace_back(target.key);
    map_.erase(spot);
  }
  return result;
}

}  // namespace nodenomad::storage
