// StorageEngine: the public face; every call forwards to EngineCore.
#include "nodenomad/storage/storage_engine.hpp"

#include <fmt/format.h>

#include "common/record_format.hpp"
#include "storage/engine_core.hpp"
#include "storage/wal_format.hpp"

namespace nodenomad {
namespace {

// Bytes a command adds around its key and value (header, flags, lengths),
// rounded up generously.
constexpr std::size_t kCommandOverheadBytes = 64;

Status option_error(std::string_view name, std::string_view why) {
  return Status::invalid_argument(fmt::format("storage option {} {}", name, why));
}

}  // namespace

Status validate_storage_options(const StorageOptions& o) {
  if (o.max_key_bytes == 0) return option_error("max_key_bytes", "must be at least 1");
  const std::uint64_t largest_write = std::uint64_t{o.max_key_bytes} + o.max_value_bytes +
                                      kCommandOverheadBytes + storage::kWalCommandPrefixBytes;
  if (largest_write > record::kMaxRecordPayloadBytes) {
    return option_error("max_key_bytes + max_value_bytes",
                        fmt::format("must leave a write under the {}-byte WAL record limit",
                                    record::kMaxRecordPayloadBytes));
  }
  if (o.max_pending_bytes < largest_write) {
    return option_error("max_pending_bytes",
                        fmt::format("must hold one largest write ({} bytes)", largest_write));
  }
  if (o.max_batch_bytes == 0) return option_error("max_batch_bytes", "must be at least 1");
  if (o.max_batch_writes == 0) return option_error("max_batch_writes", "must be at least 1");
  if (o.max_pending_writes == 0) return option_error("max_pending_writes", "must be at least 1");
  if (o.max_wal_bytes == 0) return option_error("max_wal_bytes", "must be at least 1");
  if (o.snapshot_record_bytes == 0) {
    return option_error("snapshot_record_bytes", "must be at least 1");
  }
  if (o.restore_max_queued_bytes == 0) {
    return option_error("restore_max_queued_bytes", "must be at least 1");
  }
  if (o.max_expire_batch_keys == 0 || o.max_expire_batch_keys > kMaxExpireTargetsPerCommand) {
    return option_error("max_expire_batch_keys",
                        fmt::format("must be 1 to {}", kMaxExpireTargetsPerCommand));
  }
  const std::uint64_t largest_expire =
      std::uint64_t{o.max_expire_batch_keys} * (o.max_key_bytes + 12) + kCommandOverheadBytes;
  if (largest_expire > record::kMaxRecordPayloadBytes || largest_expire > o.max_pending_bytes) {
    return option_error("max_expire_batch_keys",
                        "times max_key_bytes must fit in a WAL record and in max_pending_bytes");
  }
  return Status::ok();
}

KvCommand make_expire_command(WallTime now, const std::vector<DueKey>& due) {
  KvCommand command;
  command.type = KvCommandType::kExpire;
  command.issued_at = now;
  command.expire_targets.reserve(due.size());
  for (const DueKey& d : due) command.expire_targets.push_back(ExpireTarget{d.key, d.version});
  return command;
}

StorageEngine::StorageEngine(std::unique_ptr<storage::EngineCore> core) : core_(std::move(core)) {}
StorageEngine::~StorageEngine() = default;

Result<std::unique_ptr<StorageEngine>> StorageEngine::open(StorageOptions options) {
  NN_ASSIGN_OR_RETURN(auto core, storage::EngineCore::open(std::move(options)));
  return std::unique_ptr<StorageEngine>(new StorageEngine(std::move(core)));
}

Result<ReadResult> StorageEngine::get(std::string_view key, WallTime now) const {
  ReadResult out;
  NN_RETURN_IF_ERROR(core_->get_into(key, now, out));
  return out;
}

Result<ReadResult> StorageEngine::get(std::string_view key) const {
  return get(key, core_->clock().wall_now());
}

Status StorageEngine::get_into(std::string_view key, WallTime now, ReadResult& out) const {
  return core_->get_into(key, now, out);
}

Status StorageEngine::get_many(std::span<const std::string_view> keys, WallTime now,
                               std::span<ReadResult> out) const {
  return core_->get_many(keys, now, out);
}

std::vector<DueKey> StorageEngine::find_due_keys(WallTime now, std::size_t max_keys) const {
  return core_->find_due_keys(now, max_keys);
}

Status StorageEngine::validate_command(const KvCommand& command) const {
  return core_->validate_command(command);
}

WriteResult StorageEngine::set(std::string_view key, std::string_view value,
                               const WriteOptions& options) {
  KvCommand command;
  command.type = KvCommandType::kSet;
  command.issued_at = core_->clock().wall_now();
  command.key = key;
  command.value = value;
  command.expiry = options.expiry;
  command.if_version = options.if_version;
  return core_->write(command);
}

WriteResult StorageEngine::compare_and_set(std::string_view key, std::string_view value,
                                           std::uint64_t expected_version,
                                           std::optional<WallTime> expiry) {
  return set(key, value, WriteOptions{expiry, expected_version});
}

WriteResult StorageEngine::remove(std::string_view key) {
  KvCommand command;
  command.type = KvCommandType::kRemove;
  command.issued_at = core_->clock().wall_now();
  command.key = key;
  return core_->write(command);
}

WriteResult StorageEngine::remove_if_version(std::string_view key, std::uint64_t expected_version) {
  KvCommand command;
  command.type = KvCommandType::kRemove;
  command.issued_at = core_->clock().wall_now();
  command.key = key;
  command.if_version = expected_version;
  return core_->write(command);
}

WriteResult StorageEngine::expire_due(WallTime now, std::size_t max_keys) {
  return core_->expire_due(now, max_keys);
}

namespace {

KvCommand command_of(const WriteRequest& request, WallTime now) {
  KvCommand command;
  command.type = request.type;
  command.issued_at = now;
  command.key = request.key;
  if (request.type == KvCommandType::kSet) {
    command.value = request.value;
    command.expiry = request.options.expiry;
  }
  command.if_version = request.options.if_version;
  return command;
}

Status check_request(const WriteRequest& request) {
  if (request.type == KvCommandType::kExpire) {
    return Status::invalid_argument("submit takes sets and removes; use expire_due()");
  }
  return Status::ok();
}

}  // namespace

void StorageEngine::submit(const WriteRequest& request, WriteCallback done) {
  NN_ASSERT(done, "submit needs a completion callback");
  if (Status checked = check_request(request); !checked.is_ok()) {
    done(WriteResult::refused(std::move(checked)));
    return;
  }
  // Encoded before submit returns, so the views into `request` stay valid.
  core_->submit(command_of(request, core_->clock().wall_now()), std::move(done));
}

void StorageEngine::submit_all(std::span<const WriteRequest> requests,
                               const std::function<void(std::size_t, WriteResult)>& done) {
  NN_ASSERT(done, "submit_all needs a completion callback");
  const WallTime now = core_->clock().wall_now();
  std::vector<KvCommand> commands;
  std::vector<std::size_t> positions;  // commands[j] is requests[positions[j]]
  commands.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (Status checked = check_request(requests[i]); !checked.is_ok()) {
      done(i, WriteResult::refused(std::move(checked)));
      continue;
    }
    commands.push_back(command_of(requests[i], now));
    positions.push_back(i);
  }
  // Copied, not referenced: callbacks may run after this call returns, on
  // whichever thread commits them.
  core_->submit_all(commands, [done, positions = std::move(positions)](std::size_t j,
                                                                       WriteResult result) {
    done(positions[j], std::move(result));
  });
}

Status StorageEngine::snapshot() { return core_->snapshot(); }
Status StorageEngine::flush() { return core_->flush(); }
StorageStats StorageEngine::stats() const { return core_->stats(); }
bool StorageEngine::failed() const { return core_->failed(); }

Result<std::string> StorageEngine::apply(LogIndex index, std::string_view command) {
  return core_->apply(index, command);
}

LogIndex StorageEngine::last_applied_index() const { return core_->last_applied_index(); }

Result<std::unique_ptr<SnapshotSource>> StorageEngine::open_snapshot() {
  return core_->open_snapshot();
}

Result<std::unique_ptr<SnapshotSink>> StorageEngine::begin_restore(LogIndex index) {
  return core_->begin_restore(index);
}

Result<std::shared_ptr<const StateCapture>> StorageEngine::capture() const {
  return core_->capture();
}

ShardDigest StorageEngine::digest() const { return core_->digest(); }

std::size_t StorageEngine::free_released_records(std::size_t max) {
  return core_->free_released_records(max);
}

std::unique_ptr<StateRemains> StorageEngine::take_state() { return core_->take_state(); }

StateRemains::StateRemains(std::unique_ptr<Records> records) : records_(std::move(records)) {}
StateRemains::~StateRemains() = default;

bool StateRemains::release(std::size_t max_records) {
  std::vector<storage::RecordRef>& refs = records_->refs;
  for (std::size_t i = 0; i < max_records && !refs.empty(); ++i) refs.pop_back();
  if (refs.empty()) refs.shrink_to_fit();
  return refs.empty();
}

std::size_t StateRemains::records_left() const { return records_->refs.size(); }

Status StorageEngine::replace_buckets(const std::vector<std::uint32_t>& buckets,
                                      const std::vector<std::string>& chunks) {
  return core_->replace_buckets(buckets, chunks);
}

}  // namespace nodenomad
