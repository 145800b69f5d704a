// FakeClientApi: an in-memory ClientApi for the HTTP tests. Versions grow by
// one per write of a key and survive a delete (API.md); it can be told to
// answer every key-value call with an error, to answer from another thread,
// or to hold its answers until the test releases them. Its migration store
// is scripted: create_migration starts one operation per shard, rebalance
// and drain_node start the planned moves the test set, and the test moves
// operations along with update_migration().
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nodenomad/client_api.hpp"

namespace nodenomad::net::testing {

class FakeClientApi : public ClientApi {
 public:
  enum class Delivery {
    kInline,       // the callback runs before the call returns
    kOtherThread,  // the callback runs on the fake's own worker thread
    kHold,         // the callback waits for release_held()
  };

  FakeClientApi() : worker_([this] { run_worker(); }) {}
  ~FakeClientApi() override {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    worker_.join();
  }

  // ---- what the test sets ----
  void set_delivery(Delivery delivery) {
    std::lock_guard lock(mutex_);
    delivery_ = delivery;
  }
  // Every key-value call answers this status (kOk: behave normally).
  void set_kv_status(Status status) {
    std::lock_guard lock(mutex_);
    kv_status_ = std::move(status);
  }
  void set_ready(bool ready) {
    std::lock_guard lock(mutex_);
    ready_ = ready;
  }
  void set_cluster(Result<ClusterInfo> cluster) {
    std::lock_guard lock(mutex_);
    cluster_ = std::move(cluster);
  }
  void set_add_node_status(Status status) {
    std::lock_guard lock(mutex_);
    add_node_status_ = std::move(status);
  }

  // Forgets every key and operation (a long fuzzing run bounds its memory
  // with it).
  void clear_entries() {
    std::lock_guard lock(mutex_);
    entries_.clear();
    migrations_.clear();
  }

  // ---- the migration store ----
  // Every migration call answers this status (kOk: behave normally).
  void set_migration_status(Status status) {
    std::lock_guard lock(mutex_);
    migration_status_ = std::move(status);
  }
  // What rebalance() starts, and drain_node(id) of the moves whose source is id.
  void set_planned_moves(std::vector<MigrationRequest> moves) {
    std::lock_guard lock(mutex_);
    planned_moves_ = std::move(moves);
  }
  // The Unix time (ms) the store stamps on operations it starts or ends.
  void set_now_ms(std::uint64_t now_ms) {
    std::lock_guard lock(mutex_);
    now_ms_ = now_ms;
  }
  // Adds an operation as it is (the test fills every field).
  void add_migration(MigrationStatus status) {
    std::lock_guard lock(mutex_);
    migrations_.push_back(std::move(status));
  }
  // Changes operation `id` in place; false if there is none.
  bool update_migration(const std::string& id, const std::function<void(MigrationStatus&)>& edit) {
    std::lock_guard lock(mutex_);
    MigrationStatus* op = find_migration(id);
    if (op == nullptr) return false;
    edit(*op);
    return true;
  }
  std::vector<MigrationStatus> migrations() const {
    std::lock_guard lock(mutex_);
    return migrations_;
  }
  std::optional<MigrationRequest> last_migration_request() const {
    std::lock_guard lock(mutex_);
    return last_migration_request_;
  }
  struct ControlCall {
    std::string id;
    MigrationControl control;
    std::uint64_t bandwidth_bytes_per_s;
  };
  std::optional<ControlCall> last_control() const {
    std::lock_guard lock(mutex_);
    return last_control_;
  }
  NodeId last_drained() const {
    std::lock_guard lock(mutex_);
    return last_drained_;
  }

  // ---- what the test reads ----
  std::size_t held_count() const {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  // Answers every held call, on the calling thread.
  void release_held() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
    }
    for (auto& answer : held) answer();
  }
  // Answers the oldest held call; false if none was held.
  bool release_one() {
    std::function<void()> answer;
    {
      std::lock_guard lock(mutex_);
      if (held_.empty()) return false;
      answer = std::move(held_.front());
      held_.erase(held_.begin());
    }
    answer();
    return true;
  }
  std::optional<PutOptions> last_put_options() const {
    std::lock_guard lock(mutex_);
    return last_put_options_;
  }
  std::optional<GetOptions> last_get_options() const {
    std::lock_guard lock(mutex_);
    return last_get_options_;
  }
  std::string last_key() const {
    std::lock_guard lock(mutex_);
    return last_key_;
  }
  std::vector<std::pair<NodeId, std::string>> added_nodes() const {
    std::lock_guard lock(mutex_);
    return added_nodes_;
  }
  std::size_t calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

  // ---- ClientApi ----
  void put(std::string key, std::string value, PutOptions options, KvCallback done) override {
    std::unique_lock lock(mutex_);
    last_put_options_ = options;
    KvReply reply = start_kv_call(key);
    if (reply.status.is_ok()) {
      Entry& entry = entries_[key];
      const std::uint64_t current = entry.live ? entry.version : 0;
      if (options.if_version && *options.if_version != current) {
        reply.status =
            Status::version_mismatch("if_version " + std::to_string(*options.if_version) +
                                     " but the key is at " + std::to_string(current));
        reply.current_version = current;
      } else {
        entry = Entry{true, entry.version + 1, std::move(value), options.ttl_ms};
        reply.version = entry.version;
      }
    }
    deliver(std::move(lock), [done = std::move(done), reply = std::move(reply)] { done(reply); });
  }

  void get(std::string key, GetOptions options, KvCallback done) override {
    std::unique_lock lock(mutex_);
    last_get_options_ = options;
    KvReply reply = start_kv_call(key);
    if (reply.status.is_ok()) {
      auto it = entries_.find(key);
      if (it == entries_.end() || !it->second.live) {
        reply.status = Status::not_found("no such key");
      } else {
        reply.version = it->second.version;
        reply.value = it->second.value;
        reply.expires_in_ms = it->second.ttl_ms;
      }
    }
    deliver(std::move(lock), [done = std::move(done), reply = std::move(reply)] { done(reply); });
  }

  void remove(std::string key, RemoveOptions options, KvCallback done) override {
    std::unique_lock lock(mutex_);
    KvReply reply = start_kv_call(key);
    if (reply.status.is_ok()) {
      Entry& entry = entries_[key];
      const std::uint64_t current = entry.live ? entry.version : 0;
      if (options.if_version && *options.if_version != current) {
        reply.status = Status::version_mismatch("if_version did not match");
        reply.current_version = current;
      } else {
        reply.deleted = entry.live;
        if (entry.live) entry = Entry{false, entry.version + 1, "", std::nullopt};
      }
    }
    deliver(std::move(lock), [done = std::move(done), reply = std::move(reply)] { done(reply); });
  }

  void cluster_info(std::function<void(Result<ClusterInfo>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    Result<ClusterInfo> info = cluster_;
    deliver(std::move(lock), [done = std::move(done), info = std::move(info)] { done(info); });
  }

  void add_node(NodeId id, std::string address, std::function<void(Status)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    Status status = add_node_status_;
    if (status.is_ok()) added_nodes_.emplace_back(std::move(id), std::move(address));
    deliver(std::move(lock),
            [done = std::move(done), status = std::move(status)] { done(status); });
  }

  void create_migration(MigrationRequest request,
                        std::function<void(Result<MigrationBatch>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    last_migration_request_ = request;
    std::vector<MigrationRequest> moves;
    for (ShardId shard : request.shards) {
      moves.push_back({{shard}, request.source, request.target, request.bandwidth_bytes_per_s});
    }
    Result<MigrationBatch> batch = or_error<MigrationBatch>([&] { return start_batch(moves); });
    deliver(std::move(lock), [done = std::move(done), batch = std::move(batch)] { done(batch); });
  }

  void rebalance(std::function<void(Result<MigrationBatch>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    Result<MigrationBatch> batch =
        or_error<MigrationBatch>([&] { return start_batch(planned_moves_); });
    deliver(std::move(lock), [done = std::move(done), batch = std::move(batch)] { done(batch); });
  }

  void drain_node(NodeId id, std::function<void(Result<MigrationBatch>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    last_drained_ = id;
    std::vector<MigrationRequest> moves;
    for (const auto& move : planned_moves_) {
      if (move.source == id) moves.push_back(move);
    }
    Result<MigrationBatch> batch = or_error<MigrationBatch>([&] { return start_batch(moves); });
    deliver(std::move(lock), [done = std::move(done), batch = std::move(batch)] { done(batch); });
  }

  void list_migrations(std::function<void(Result<std::vector<MigrationStatus>>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    Result<std::vector<MigrationStatus>> list =
        or_error<std::vector<MigrationStatus>>([&] { return migrations_; });
    deliver(std::move(lock), [done = std::move(done), list = std::move(list)] { done(list); });
  }

  void get_migration(std::string id, std::function<void(Result<MigrationStatus>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    Result<MigrationStatus> status = or_error<MigrationStatus>([&]() -> Result<MigrationStatus> {
      const MigrationStatus* op = find_migration(id);
      if (op == nullptr) return Status::not_found("no migration operation \"" + id + "\"");
      return *op;
    });
    deliver(std::move(lock),
            [done = std::move(done), status = std::move(status)] { done(status); });
  }

  void control_migration(std::string id, MigrationControl control,
                         std::uint64_t bandwidth_bytes_per_s,
                         std::function<void(Result<MigrationStatus>)> done) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    last_control_ = ControlCall{id, control, bandwidth_bytes_per_s};
    Result<MigrationStatus> status = or_error<MigrationStatus>(
        [&] { return apply_control(id, control, bandwidth_bytes_per_s); });
    deliver(std::move(lock),
            [done = std::move(done), status = std::move(status)] { done(status); });
  }

  const NodeId& node_id() const override { return node_id_; }
  bool is_ready() const override {
    std::lock_guard lock(mutex_);
    return ready_;
  }
  std::string metrics_text() const override { return "nodenomad_fake_up 1\n"; }

 private:
  struct Entry {
    bool live = false;
    std::uint64_t version = 0;  // survives a delete: a re-create continues above it
    std::string value;
    std::optional<std::uint64_t> ttl_ms;
  };

  KvReply start_kv_call(const std::string& key) {
    ++calls_;
    last_key_ = key;
    KvReply reply;
    reply.status = kv_status_;
    return reply;
  }

  // migration_status_ when the test set one, else what `answer` gives.
  template <typename T, typename Answer>
  Result<T> or_error(Answer answer) {
    if (!migration_status_.is_ok()) return migration_status_;
    return answer();
  }

  MigrationStatus* find_migration(const std::string& id) {
    for (auto& op : migrations_) {
      if (op.id == id) return &op;
    }
    return nullptr;
  }

  // One operation per move, each in Prepare, all in one new batch.
  MigrationBatch start_batch(const std::vector<MigrationRequest>& moves) {
    MigrationBatch batch;
    batch.id = "batch-" + std::to_string(++batches_started_);
    for (const auto& move : moves) {
      MigrationStatus op;
      op.id = "op-" + std::to_string(++operations_started_);
      op.batch_id = batch.id;
      op.shard = move.shards.at(0);
      op.source = move.source;
      op.target = move.target;
      op.bandwidth_bytes_per_s = move.bandwidth_bytes_per_s;
      op.started_at_ms = now_ms_;
      batch.operations.push_back(op.id);
      migrations_.push_back(std::move(op));
    }
    return batch;
  }

  // Cancel rolls back before Update and is only noted after it; an ended
  // operation refuses every control, as the Node does.
  Result<MigrationStatus> apply_control(const std::string& id, MigrationControl control,
                                        std::uint64_t bandwidth_bytes_per_s) {
    MigrationStatus* op = find_migration(id);
    if (op == nullptr) return Status::not_found("no migration operation \"" + id + "\"");
    if (migration_stage_terminal(op->stage)) {
      return Status::invalid_argument("operation " + id + " has ended (" +
                                      std::string(migration_stage_name(op->stage)) + ")");
    }
    switch (control) {
      case MigrationControl::kCancel:
        op->cancel_requested = true;
        if (op->stage < MigrationStage::kUpdate) {
          op->stage = MigrationStage::kCancelled;
          op->finished_at_ms = now_ms_;
          op->error = "cancelled on request";
        }
        break;
      case MigrationControl::kPause:
        op->paused = true;
        break;
      case MigrationControl::kResume:
        op->paused = false;
        break;
      case MigrationControl::kSetBandwidth:
        if (bandwidth_bytes_per_s == 0) return Status::invalid_argument("bandwidth must be > 0");
        op->bandwidth_bytes_per_s = bandwidth_bytes_per_s;
        break;
    }
    return *op;
  }

  // Runs `answer` as the delivery mode says, never with the mutex held.
  void deliver(std::unique_lock<std::mutex> lock, std::function<void()> answer) {
    switch (delivery_) {
      case Delivery::kInline:
        lock.unlock();
        answer();
        return;
      case Delivery::kOtherThread:
        queue_.push_back(std::move(answer));
        lock.unlock();
        wake_.notify_all();
        return;
      case Delivery::kHold:
        held_.push_back(std::move(answer));
        return;
    }
  }

  void run_worker() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return quit_ || !queue_.empty(); });
      if (queue_.empty()) return;  // quit, nothing left to answer
      auto answer = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      answer();
      lock.lock();
    }
  }

  const NodeId node_id_{"node-1"};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool quit_ = false;
  Delivery delivery_ = Delivery::kInline;
  Status kv_status_;
  bool ready_ = true;
  Result<ClusterInfo> cluster_{ClusterInfo{}};
  Status add_node_status_;
  std::map<std::string, Entry> entries_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::function<void()>> held_;
  std::optional<PutOptions> last_put_options_;
  std::optional<GetOptions> last_get_options_;
  std::string last_key_;
  std::vector<std::pair<NodeId, std::string>> added_nodes_;
  std::size_t calls_ = 0;
  Status migration_status_;
  std::vector<MigrationStatus> migrations_;
  std::vector<MigrationRequest> planned_moves_;
  std::uint64_t now_ms_ = 1'764'151'200'000;  // 2025-11-26T10:00:00Z
  std::uint64_t batches_started_ = 0;
  std::uint64_t operations_started_ = 0;
  std::optional<MigrationRequest> last_migration_request_;
  std::optional<ControlCall> last_control_;
  NodeId last_drained_;
  std::thread worker_;  // last: starts after every member above exists
};

}  // namespace nodenomad::net::testing
