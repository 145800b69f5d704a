// EngineCore: reads, the standalone write path (validate, log, apply after
// durable) and the replicated apply path. Opening, snapshots and restore are
// in engine_persistence.cpp.
#include "storage/engine_core.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/record_format.hpp"
#include "nodenomad/logging.hpp"
#include "storage/snapshot.hpp"
#include "storage/wal_format.hpp"

namespace nodenomad::storage {

namespace {

// A writer thread's reused payload buffer is dropped after a write larger
// than this, so one large value does not pin its memory for good.
constexpr std::size_t kMaxKeptPayloadBytes = 64u << 10;

// get_many() holds the read lock for at most this many keys at a time, so a
// long batch never keeps writers waiting for long.
constexpr std::size_t kGetManyKeysPerLock = 32;

void copy_out(const Record* record, ReadResult& out) {
  if (record == nullptr) {
    out.value.clear();
    out.version = 0;
    out.expiry.reset();
    return;
  }
  out.value.assign(record->value());
  out.version = record->version();
  out.expiry = record->has_expiry() ? std::optional<WallTime>(from_ms(record->expiry_ms()))
                                    : std::nullopt;
}

}  // namespace

Status EngineCore::get_into(std::string_view key, WallTime now, ReadResult& out) const {
  if (key.empty() || key.size() > limits_.max_key_bytes) return check_kv_limits(limits_, key, {});
  std::shared_lock lock(*state_mu_);
  const Record* record = state_->find_live(key, to_ms(now));
  if (record == nullptr) return Status::not_found("no such key (absent or expired)");
  copy_out(record, out);
  return Status::ok();
}

Status EngineCore::get_many(std::span<const std::string_view> keys, WallTime now,
                            std::span<ReadResult> out) const {
  if (keys.size() != out.size()) {
    return Status::invalid_argument(fmt::format("get_many: {} keys but {} results", keys.size(),
                                                out.size()));
  }
  for (std::string_view key : keys) NN_RETURN_IF_ERROR(check_kv_limits(limits_, key, {}));
  const std::int64_t now_ms = to_ms(now);
  const Record* found[kGetManyKeysPerLock];
  for (std::size_t start = 0; start < keys.size(); start += kGetManyKeysPerLock) {
    const std::size_t n = std::min(kGetManyKeysPerLock, keys.size() - start);
    std::shared_lock lock(*state_mu_);
    // Lookups first, with the values' lines prefetched, then the copies: the
    // independent lookups' cache misses overlap instead of queuing.
    for (std::size_t i = 0; i < n; ++i) {
      found[i] = state_->find_live(keys[start + i], now_ms);
      if (found[i] != nullptr && !found[i]->value().empty()) {
        __builtin_prefetch(found[i]->value().data());
        __builtin_prefetch(found[i]->value().data() + found[i]->value().size() - 1);
      }
    }
    for (std::size_t i = 0; i < n; ++i) copy_out(found[i], out[start + i]);
  }
  return Status::ok();
}

std::vector<DueKey> EngineCore::find_due_keys(WallTime now, std::size_t max_keys) const {
  std::vector<const Record*> records;
  std::vector<DueKey> due;
  std::shared_lock lock(*state_mu_);
  state_->map().collect_due(to_ms(now), max_keys, records);
  due.reserve(records.size());
  for (const Record* r : records) {
    due.push_back(DueKey{std::string(r->key()), r->version(), from_ms(r->expiry_ms())});
  }
  return due;
}

Status EngineCore::validate_command(const KvCommand& command) const {
  switch (command.type) {
    case KvCommandType::kSet: return check_kv_limits(limits_, command.key, command.value);
    case KvCommandType::kRemove: return check_kv_limits(limits_, command.key, {});
    case KvCommandType::kExpire:
      if (command.expire_targets.size() > kMaxExpireTargetsPerCommand) {
        return Status::invalid_argument(fmt::format(
            "expire command with {} keys is over the limit of {}", command.expire_targets.size(),
            kMaxExpireTargetsPerCommand));
      }
      return Status::ok();
  }
  return Status::invalid_argument("unknown command type");
}

StorageStats EngineCore::stats() const {
  StorageStats stats;
  {
    std::shared_lock lock(*state_mu_);
    stats.keys = state_->map().size();
    stats.bytes = state_->map().bytes();
    stats.keys_with_expiry = state_->map().keys_with_expiry();
    stats.version_floor = state_->version_floor();
    stats.last_applied = state_->last_applied();
  }
  stats.wal_bytes = wal_bytes_.load(std::memory_order_relaxed);
  stats.wal_syncs = wal_syncs_.load(std::memory_order_relaxed);
  if (queue_ != nullptr) {
    stats.batches_committed = queue_->batches_committed();
    stats.writes_committed = queue_->writes_committed();
  }
  stats.snapshots_written = snapshots_written_.load(std::memory_order_relaxed);
  stats.failed = failed();
  return stats;
}

bool EngineCore::failed() const {
  return queue_ != nullptr ? queue_->failed() : failed_.load(std::memory_order_acquire);
}

LogIndex EngineCore::last_applied_index() const {
  std::shared_lock lock(*state_mu_);
  return state_->last_applied();
}

Status EngineCore::make_payload(const KvCommand& command, std::string& payload) const {
  if (!standalone()) {
    return Status::not_supported(
        "the engine is in replicated mode: writes are proposed to Raft and arrive through apply()");
  }
  NN_RETURN_IF_ERROR(validate_command(command));
  payload.clear();
  payload.reserve(kWalCommandPrefixBytes + 32 + command.key.size() + command.value.size());
  begin_wal_command_payload(payload);
  encode_kv_command(command, payload);
  return Status::ok();
}

WriteResult EngineCore::write(const KvCommand& command) {
  // Each writing thread keeps one payload buffer: the queue hands it back
  // after the commit, so a blocking write allocates nothing for it (and
  // short-lived buffers do not interleave with the records on the heap).
  thread_local std::string t_payload;
  if (Status made = make_payload(command, t_payload); !made.is_ok()) {
    return WriteResult::refused(std::move(made));
  }
  WriteResult result = queue_->write(t_payload);
  if (t_payload.capacity() > kMaxKeptPayloadBytes) std::string().swap(t_payload);
  return result;
}

void EngineCore::submit(const KvCommand& command, WriteCallback done) {
  NN_ASSERT(done, "submit needs a completion callback");
  std::string payload;
  if (Status made = make_payload(command, payload); !made.is_ok()) {
    done(WriteResult::refused(std::move(made)));
    return;
  }
  queue_->submit(std::move(payload), std::move(done));
}

void EngineCore::submit_all(std::span<const KvCommand> commands,
                            const std::function<void(std::size_t, WriteResult)>& done) {
  NN_ASSERT(done, "submit_all needs a completion callback");
  // One shared copy of `done` for all the writes' callbacks.
  auto shared_done = std::make_shared<std::function<void(std::size_t, WriteResult)>>(done);
  std::vector<PendingWrite> writes;
  writes.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    std::string payload;
    if (Status made = make_payload(commands[i], payload); !made.is_ok()) {
      done(i, WriteResult::refused(std::move(made)));
      continue;
    }
    auto callback = [shared_done, i](WriteResult r) { (*shared_done)(i, std::move(r)); };
    writes.push_back(PendingWrite{std::move(payload), std::move(callback), nullptr, {}});
  }
  queue_->submit_all(std::move(writes));
}

WriteResult EngineCore::expire_due(WallTime now, std::size_t max_keys) {
  if (!standalone()) {
    return WriteResult::refused(Status::not_supported("expire_due is standalone only"));
  }
  const std::vector<DueKey> due =
      find_due_keys(now, std::min(max_keys, options_.max_expire_batch_keys));
  if (due.empty()) return WriteResult{};
  return write(make_expire_command(now, due));
}

Status EngineCore::commit_batch(std::span<PendingWrite> batch) {
  const LogIndex first = next_index_;
  if (wal_ != nullptr) {
    framed_.clear();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      set_wal_command_index(batch[i].payload, first + i);
      record::encode(framed_, batch[i].payload);
    }
    Status written = wal_->append(framed_);
    wal_bytes_.store(wal_->total_bytes(), std::memory_order_relaxed);
    wal_syncs_.store(wal_->sync_count(), std::memory_order_relaxed);
    if (!written.is_ok()) {
      log(LogLevel::kError, "storage",
          fmt::format("WAL write failed, the engine stops accepting writes: {}",
                      written.to_string()));
      return written;
    }
  }
  next_index_ = first + batch.size();
  // Applied only now that the batch is durable, in log order: a reader
  // never sees a write that a crash could take back.
  std::unique_lock lock(*state_mu_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Result<KvCommand> command = decode_kv_command(wal_command_bytes(batch[i].payload));
    NN_ASSERT(command.is_ok(), "a command the engine encoded does not decode: ",
              command.status().to_string());
    batch[i].result = state_->apply(*command);
    state_->set_last_applied(first + i);
  }
  lock.unlock();
  if (wal_ != nullptr && wal_->total_bytes() > options_.max_wal_bytes) {
    snapshot_wanted_.store(true, std::memory_order_relaxed);
  }
  return Status::ok();
}

Result<std::string> EngineCore::apply(LogIndex index, std::string_view command) {
  if (standalone()) {
    return Status::not_supported("apply() is for replicated mode; standalone writes use set()");
  }
  if (failed_.load(std::memory_order_acquire)) {
    return Status::failed("the storage engine failed after an I/O error; the replica must stop");
  }
  WriteResult result;
  {
    std::unique_lock lock(*state_mu_);
    if (index <= state_->last_applied()) {
      return Status::invalid_argument(fmt::format(
          "apply of index {} at or below last_applied_index {}", index.value(),
          state_->last_applied().value()));
    }
    state_->set_last_applied(index);
    if (command.empty()) return std::string();  // the leader's no-op entry
    Result<KvCommand> decoded = decode_kv_command(command);
    // One of the records that captures handed back (KvMap::set_writer_frees)
    // is freed with every apply: at the write rate, a stream's worth of
    // them goes in seconds for a few percent of this thread.
    state_->map().free_returned(kReleasedPerApply);
    if (decoded.is_ok()) {
      result = state_->apply(*decoded);
    } else {
      // Deterministic on every replica, so the group goes on (a malformed
      // command cannot come from this engine's own proposals).
      result.status = Status::invalid_argument(
          fmt::format("malformed command: {}", decoded.status().message()));
    }
  }
  return encode_write_result(result);
}

Result<std::unique_ptr<SnapshotSource>> EngineCore::open_snapshot() {
  std::shared_ptr<const CapturedState> captured;
  {
    std::shared_lock lock(*state_mu_);
    captured = capture_state(*state_, state_mu_);
  }
  return std::unique_ptr<SnapshotSource>(
      std::make_unique<SnapshotStream>(std::move(captured), options_.snapshot_record_bytes));
}

std::shared_ptr<const StateCapture> EngineCore::capture() const {
  std::shared_ptr<const CapturedState> captured;
  {
    std::shared_lock lock(*state_mu_);
    captured = capture_state(*state_, state_mu_);
  }
  return std::shared_ptr<const StateCapture>(new StateCapture(std::move(captured)));
}

ShardDigest EngineCore::digest() const {
  std::shared_lock lock(*state_mu_);
  return kept_digest(*state_);
}

std::size_t EngineCore::free_released_records(std::size_t max) {
  std::unique_lock lock(*state_mu_);  // the map's writer's work
  return state_->map().free_returned(max);
}

std::unique_ptr<StateRemains> EngineCore::take_state() {
  std::unique_lock lock(*state_mu_);
  if (state_->map().capture_alive()) return nullptr;
  auto records = std::make_unique<StateRemains::Records>();
  records->refs = state_->map().take_all();
  return std::unique_ptr<StateRemains>(new StateRemains(std::move(records)));
}

Status EngineCore::replace_buckets(const std::vector<std::uint32_t>& buckets,
                                   const std::vector<std::string>& chunks) {
  if (standalone()) {
    return Status::not_supported(
        "replace_buckets() is for replicated mode; a standalone engine's state is its WAL's");
  }
  if (failed_.load(std::memory_order_acquire)) {
    return Status::failed("the storage engine failed after an I/O error; the replica must stop");
  }
  NN_ASSIGN_OR_RETURN(const BucketSet set, make_bucket_set(buckets));
  // Only the apply thread (this one) changes the state in replicated mode,
  // so what is read under the shared lock still holds under the exclusive
  // one below; readers are kept waiting only for the swap itself.
  const KvState* state_seen = nullptr;
  LogIndex applied;
  {
    std::shared_lock lock(*state_mu_);
    state_seen = state_.get();
    applied = state_->last_applied();
  }
  NN_ASSIGN_OR_RETURN(BucketImport import, parse_bucket_export(chunks, set, applied, limits_));
  // The buckets' current keys, from the hashes cached in the table's slots
  // (no record is read). The pointers hold until the map changes, and only
  // this thread changes it.
  std::vector<const Record*> replaced;
  {
    std::shared_lock lock(*state_mu_);
    replaced = records_in_buckets(state_->map(), set);
  }
  const std::size_t keys_in = import.records.size();
  {
    std::unique_lock lock(*state_mu_);
    NN_ASSERT(state_.get() == state_seen && state_->last_applied() == applied,
              "replace_buckets ran concurrently with apply or restore");
    KvMap& map = state_->map();
    // A removed record is freed here, or kept for a capture that may point at it.
    for (const Record* r : replaced) map.erase(r->key());
    for (RecordRef& r : import.records) map.put(std::move(r));
    state_->set_version_floor(import.version_floor);
  }
  log(LogLevel::kInfo, "storage",
      fmt::format("replaced {} buckets at index {}: {} keys out, {} in, version floor {}",
                  set.count(), applied.value(), replaced.size(), keys_in,
                  import.version_floor));
  return Status::ok();
}

void EngineCore::enter_failed(const Status& reason) {
  log(LogLevel::kError, "storage",
      fmt::format("the storage engine is failed and refuses writes from now on: {}",
                  reason.to_string()));
  failed_.store(true, std::memory_order_release);
  if (queue_ != nullptr) queue_->fail(reason);
}

}  // namespace nodenomad::storage
