// Node: opening (bootstrap, restart, join), the Raft plumbing between the
// groups, the transport and the disk thread, and stop.
#include <fmt/format.h>

#include <future>

#include "node/metadata_persistence.hpp"
#include "node/migration_coordinator.hpp"
#include "node/node_impl.hpp"
#include "node/snapshot_prefetch.hpp"
#include "nodenomad/file_log_store.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad {

namespace {

// Written once this node's groups exist on disk; its presence means
// "restart from here" (layout: one line, "nodenomad <cluster_id> <node_id>").
constexpr const char* kMarkerFile = "NODENOMAD";

std::uint64_t seed_from(const NodeOptions& options) {
  if (options.seed != 0) return options.seed;
  return std::hash<std::string>{}(options.id.str()) | 1;
}

}  // namespace

RaftConfig NodeOptions::default_raft_config() {
  RaftConfig config;
  // With 50 ms ticks: elections after 0.5-1 s of silence, heartbeats every
  // 50 ms, which a loopback or LAN round trip fits many times over.
  config.election_timeout_ticks = 10;
  config.heartbeat_interval_ticks = 1;
  config.pre_vote = true;
  config.check_quorum = true;
  config.read_mode = ReadMode::kLease;
  return config;
}

Node::Impl::Impl(NodeOptions options)
    : options_(std::move(options)),
      rng_(seed_from(options_)),
      leader_hints_(options_.id),
      coordinator_(std::make_unique<node::MigrationCoordinator>(*this)) {}

Node::Impl::~Impl() = default;

void Node::Impl::post(std::function<void(Impl&)> fn) {
  std::weak_ptr<Impl> weak = weak_from_this();
  loop_->post([weak, fn = std::move(fn)] {
    if (auto self = weak.lock(); self && !self->stopping_.load()) fn(*self);
  });
}

void Node::Impl::post_after(std::uint64_t delay_ms, std::function<void(Impl&)> fn) {
  std::weak_ptr<Impl> weak = weak_from_this();
  loop_->post_after(std::chrono::milliseconds(delay_ms), [weak, fn = std::move(fn)] {
    if (auto self = weak.lock(); self && !self->stopping_.load()) fn(*self);
  });
}

std::uint64_t Node::Impl::now_ms() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_->monotonic_now()).count());
}

Status Node::Impl::failure() const {
  std::lock_guard lock(failure_mu_);
  return failure_;
}

std::string Node::Impl::group_log_dir(GroupId group) const {
  const std::string& base = options_.wal_dir.empty() ? options_.data_dir : options_.wal_dir;
  return fmt::format("{}/raft/g-{}", base, group.value());
}

std::string Node::Impl::shard_data_dir(ShardId shard) const {
  return fmt::format("{}/shards/s-{}", options_.data_dir, shard.value());
}

RaftConfig node::replica_raft_config(const NodeOptions& options, GroupId group) {
  RaftConfig config = options.raft;
  config.id = options.id;
  // A shard moved away and back, or a node drained and added again, comes
  // back under the same id with its store emptied (raft_config.hpp).
  config.unconfigured_votes = false;
  // A shard's snapshot travels in MIGRATION_CHUNK_SIZE chunks, and a
  // transfer survives a dropped connection or a pause for as long as a
  // migration stage may stall: it then goes on from the last acknowledged
  // chunk instead of starting over.
  if (group != kMetadataGroup) {
    // A move's target is a learner until Verify has matched its state. (The
    // metadata group promotes a learner by its log position alone, so an
    // empty one of a short log may be promoted: not there.)
    config.members_join_as_learners = true;
    config.snapshot_chunk_bytes = options.migration_chunk_bytes;
    config.snapshot_abandon_ticks = static_cast<std::uint32_t>(std::max<std::uint64_t>(
        options.migration_timeout_ms / options.tick_ms, 4ull * config.election_timeout_ticks));
  }
  return config;
}

RaftConfig Node::Impl::raft_config_for(GroupId group) const {
  return node::replica_raft_config(options_, group);
}

Status Node::Impl::open() {
  if (options_.id.empty()) return Status::invalid_argument("NodeOptions.id is empty");
  if (options_.transport == nullptr) {
    return Status::invalid_argument("NodeOptions.transport is required");
  }
  if (options_.data_dir.empty()) return Status::invalid_argument("NodeOptions.data_dir is empty");
  if (options_.tick_ms == 0) return Status::invalid_argument("NodeOptions.tick_ms must be > 0");
  if (options_.migration_chunk_bytes < 4096 || options_.migration_chunk_bytes > (32u << 20)) {
    return Status::invalid_argument(fmt::format(
        "NodeOptions.migration_chunk_bytes is {}; a chunk is 4 KiB to 32 MiB",
        options_.migration_chunk_bytes));
  }
  if (options_.max_concurrent_migrations == 0 || options_.max_node_migrations == 0) {
    return Status::invalid_argument(
        "NodeOptions.max_concurrent_migrations and max_node_migrations must be at least 1");
  }
  if (!(options_.compact_log_fraction >= 0 && options_.compact_log_fraction <= 1'000)) {
    return Status::invalid_argument(fmt::format(
        "NodeOptions.compact_log_fraction is {}; it is 0 (off) to 1000", options_.compact_log_fraction));
  }
  if (options_.migration_timeout_ms == 0) {
    return Status::invalid_argument("NodeOptions.migration_timeout_ms must be > 0");
  }
  fs_ = options_.file_system != nullptr ? options_.file_system : &PosixFileSystem::instance();
  clock_ = options_.clock != nullptr ? options_.clock : &SystemClock::instance();
  if (options_.loop == nullptr) own_loop_ = std::make_unique<ThreadEventLoop>();
  loop_ = options_.loop != nullptr ? options_.loop : own_loop_.get();
  syncer_ = std::make_unique<node::DiskSyncer>(options_.background_loop);
  worker_.run_inline_on(options_.background_loop);
  snapshot_worker_.run_inline_on(options_.background_loop);
  disk_worker_.run_inline_on(options_.background_loop);
  if (Status made = fs_->create_dirs(options_.data_dir); !made.is_ok()) {
    return made.with_context(
        fmt::format("the data directory {} cannot be created or used", options_.data_dir));
  }
  NN_ASSIGN_OR_RETURN(const bool existing,
                      fs_->exists(options_.data_dir + "/" + kMarkerFile));
  if (existing) return open_existing();
  if (options_.join) {
    // A joining node hosts an empty metadata replica and waits for a
    // member to add it; it learns the cluster from the leader's snapshot.
    NN_RETURN_IF_ERROR(open_metadata_group(false));
    return write_marker();
  }
  return bootstrap();
}

Status Node::Impl::write_marker() {
  const std::string path = options_.data_dir + "/" + kMarkerFile;
  const std::string tmp = path + ".tmp";
  NN_ASSIGN_OR_RETURN(auto file, fs_->open_writable(tmp, WriteMode::kTruncate));
  NN_RETURN_IF_ERROR(
      file->append(fmt::format("nodenomad {} {}\n", options_.cluster_id, options_.id.str())));
  NN_RETURN_IF_ERROR(file->sync());
  NN_RETURN_IF_ERROR(file->close());
  NN_RETURN_IF_ERROR(fs_->rename(tmp, path));
  return fs_->sync_dir(options_.data_dir);
}

Status Node::Impl::bootstrap() {
  if (options_.initial_members.empty()) {
    return Status::invalid_argument(
        "no cluster members given (CLUSTER_NODES) and no data to restart from; give the "
        "founding members, or set join to wait to be added to an existing cluster");
  }
  bool found_self = false;
  for (const NodeMember& m : options_.initial_members) found_self |= m.id == options_.id;
  if (!found_self) {
    return Status::invalid_argument(fmt::format(
        "node id {} is not among the founding members (CLUSTER_NODES)", options_.id.str()));
  }
  // A bootstrap that crashed half-way left no marker and acknowledged
  // nothing: start it over from scratch.
  const std::string& wal_base = options_.wal_dir.empty() ? options_.data_dir : options_.wal_dir;
  NN_RETURN_IF_ERROR(fs_->remove_all(wal_base + "/raft"));
  NN_RETURN_IF_ERROR(fs_->remove_all(options_.data_dir + "/shards"));
  NN_RETURN_IF_ERROR(fs_->remove_all(options_.data_dir + "/metadata"));
  NN_RETURN_IF_ERROR(open_metadata_group(true));
  const ClusterMetadata& meta = *metadata_->current();
  for (std::uint32_t s = 0; s < meta.shard_map().shard_count(); ++s) {
    const ShardPlacement& placement = meta.shard_map().placement(ShardId(s));
    if (std::find(placement.replicas.begin(), placement.replicas.end(), options_.id) ==
        placement.replicas.end()) {
      continue;
    }
    NN_RETURN_IF_ERROR(open_shard_group(ShardId(s), &placement.replicas));
  }
  return write_marker();
}

Status Node::Impl::open_existing() {
  NN_RETURN_IF_ERROR(open_metadata_group(false));
  const std::string& wal_base = options_.wal_dir.empty() ? options_.data_dir : options_.wal_dir;
  NN_RETURN_IF_ERROR(fs_->create_dirs(wal_base + "/raft"));
  NN_RETURN_IF_ERROR(remove_trash());
  NN_ASSIGN_OR_RETURN(const std::vector<std::string> names, fs_->list(wal_base + "/raft"));
  for (const std::string& name : names) {
    if (name.rfind("g-", 0) != 0) continue;
    const std::uint64_t g = std::strtoull(name.c_str() + 2, nullptr, 10);
    if (g == 0) continue;  // the metadata group, opened above
    NN_RETURN_IF_ERROR(open_shard_group(shard_of_group(GroupId(g)), nullptr));
  }
  return Status::ok();
}

Status Node::Impl::open_metadata_group(bool fresh_bootstrap) {
  const std::string dir = options_.data_dir + "/metadata";
  NN_RETURN_IF_ERROR(fs_->create_dirs(dir));
  NN_ASSIGN_OR_RETURN(auto store, FileLogStore::open(*fs_, group_log_dir(kMetadataGroup), {}));
  if (fresh_bootstrap) {
    std::vector<Member> members;
    for (const NodeMember& m : options_.initial_members) {
      members.push_back(Member{m.id, m.address, MemberState::kActive});
    }
    NN_ASSIGN_OR_RETURN(ClusterMetadata initial,
                        ClusterMetadata::bootstrap(options_.cluster_id, std::move(members),
                                                   options_.shard_count,
                                                   options_.replication_factor));
    metadata_ = std::make_shared<MetadataStateMachine>(std::move(initial));
    NN_RETURN_IF_ERROR(node::save_metadata_snapshot(*fs_, dir, *metadata_));
    NN_RETURN_IF_ERROR(RaftEngine::bootstrap(*store, node::metadata_conf(
                                                         *metadata_->current(),
                                                         options_.metadata_replicas)));
  } else {
    metadata_ = std::make_shared<MetadataStateMachine>();
    NN_RETURN_IF_ERROR(node::load_metadata_snapshot(*fs_, dir, *metadata_));
  }
  node::ReplicaParts parts;
  parts.log_store = std::move(store);
  parts.state_machine = metadata_;
  auto machine = metadata_;
  FileSystem* fs = fs_;
  parts.persist_state = [fs, dir, machine] { return node::save_metadata_snapshot(*fs, dir, *machine); };
  // A joiner gets the metadata by InstallSnapshot; MetadataStateMachine's
  // restore is in memory only, so without this a kill -9 before the next
  // compaction restarts it on an empty state behind a log that starts later.
  parts.persist_restored_state = parts.persist_state;
  node::ReplicaLimits limits;
  limits.compact_every_entries = 1'000;
  limits.compact_keep_entries = 100;
  NN_ASSIGN_OR_RETURN(auto replica,
                      node::GroupReplica::open(kMetadataGroup, raft_config_for(kMetadataGroup),
                                               std::move(parts), limits, rng_.fork(), *this));
  groups_[kMetadataGroup] = std::move(replica);
  refresh_from_metadata();
  return Status::ok();
}

Status Node::Impl::open_shard_group(ShardId shard, const std::vector<NodeId>* bootstrap_voters) {
  const GroupId group = group_of_shard(shard);
  NN_ASSIGN_OR_RETURN(auto store, FileLogStore::open(*fs_, group_log_dir(group), {}));
  if (bootstrap_voters != nullptr) {
    ConfState conf;
    conf.voters = *bootstrap_voters;
    NN_RETURN_IF_ERROR(RaftEngine::bootstrap(*store, conf));
  }
  StorageOptions so;
  so.mode = StorageMode::kReplicated;
  so.dir = shard_data_dir(shard);
  so.file_system = fs_;
  so.clock = clock_;
  so.max_key_bytes = options_.max_key_bytes;
  so.max_value_bytes = options_.max_value_bytes;
  // The simulation runs everything on its one scheduler thread.
  so.restore_writer_thread = options_.background_loop == nullptr;
  NN_ASSIGN_OR_RETURN(std::unique_ptr<StorageEngine> engine, StorageEngine::open(so));
  std::shared_ptr<StorageEngine> storage(std::move(engine));
  node::ReplicaParts parts;
  parts.log_store = std::move(store);
  parts.state_machine = storage;
  parts.persist_state = [storage] { return storage->snapshot(); };
  parts.persist_state_off_loop = true;
  parts.wrap_snapshot_source = [this, group](std::unique_ptr<SnapshotSource> source) {
    return prefetch_snapshot(group, std::move(source));
  };
  parts.state_bytes = [storage] { return storage->stats().bytes; };
  node::ReplicaLimits limits;
  limits.compact_every_entries = options_.compact_every_entries;
  limits.compact_keep_entries = std::max<std::uint64_t>(options_.compact_every_entries / 10, 1);
  limits.compact_log_fraction = options_.compact_log_fraction;
  limits.compact_small_state_bytes = options_.compact_small_state_bytes;
  NN_ASSIGN_OR_RETURN(auto replica, node::GroupReplica::open(group, raft_config_for(group),
                                                             std::move(parts), limits,
                                                             rng_.fork(), *this));
  storage_[shard] = storage;
  groups_[group] = std::move(replica);
  return Status::ok();
}

void Node::Impl::start() {
  started_ = true;
  // Request ids must not repeat across restarts: a peer remembers the ids it
  // served lately (duplicates are dropped), and a restarted node counting
  // from 1 again would be taken for its former self. 2^20 ids per
  // millisecond of the previous incarnation's life is out of reach.
  next_id_ = (wall_ms() << 20) | 1;
  node_bucket_.set_rate(options_.migration_bandwidth_bytes_per_s, now_ms());
  // Peers' addresses first, so the first heartbeats can leave.
  refresh_from_metadata();
  ensure_shard_groups();
  for (const NodeMember& m : options_.initial_members) {
    if (m.id != options_.id) options_.transport->set_peer(m.id, m.address);
  }
  post([](Impl& self) { self.tick(); });
  post_after(options_.ttl_scan_interval_ms, [](Impl& self) { self.expire_ttl(); });
}

void Node::Impl::tick() {
  ++ticks_;
  for (auto& [group, replica] : groups_) replica->tick();
  // What captures handed back to a shard that is no longer written to
  // (StorageEngine::free_released_records; an applying shard frees them
  // with its applies): at most 0.2 ms of the loop per tick.
  constexpr std::size_t kReleasedPerTick = 256;
  for (auto& [shard, engine] : storage_) engine->free_released_records(kReleasedPerTick);
  expire_requests();
  if (ticks_ % 10 == 0) log_bootstrap();
  coordinator_->tick();
  post_after(options_.tick_ms, [](Impl& self) { self.tick(); });
}

// The first metadata leader logs the founding state as the group's first
// command, so that every replica (a joining node replaying the log too)
// holds exactly what the log says; until then the metadata group refuses
// other changes (docs/metadata.md, "Bootstrap").
void Node::Impl::log_bootstrap() {
  node::GroupReplica& meta = *groups_.at(kMetadataGroup);
  const std::shared_ptr<const ClusterMetadata> state = metadata_->current();
  if (bootstrap_proposed_ || !meta.is_leader() || !state->initialized() ||
      state->bootstrap_logged()) {
    return;
  }
  metadata::Bootstrap command{state->cluster_id(), state->members(), state->shard_count(),
                              state->replication_factor()};
  bootstrap_proposed_ = true;
  meta.propose(encode_metadata_command(command),
               [this](Result<std::string>) { bootstrap_proposed_ = false; });
}

void Node::Impl::stop() {
  if (stopping_.exchange(true)) return;
  // Tasks already queued see stopping_ and do nothing; the disk thread
  // finishes its batch and drops the rest (nothing not yet synced was
  // acknowledged to anyone).
  if (syncer_) syncer_->stop();
  worker_.stop();
  snapshot_worker_.stop();
  disk_worker_.stop();
  if (own_loop_) own_loop_->stop();
  // Requests still waiting are answered. Pending callbacks hold no lock.
  for (auto& [id, request] : requests_) {
    KvReply reply;
    reply.status = request.maybe_applied
                       ? Status::timeout("the node stopped; the write's outcome is unknown")
                       : Status::unavailable("the node stopped; not applied");
    request.done(std::move(reply));
  }
  requests_.clear();
  // Calls to peers still waiting are answered too (their callers may be
  // client calls: a migration request, a cluster status).
  auto admin = std::move(admin_calls_);
  admin_calls_.clear();
  for (auto& [id, callback] : admin) callback(Status::unavailable("the node stopped"));
}

void Node::Impl::send_raft(GroupId group, Message message) {
  Envelope envelope;
  envelope.from = options_.id;
  envelope.to = message.to;
  envelope.group = group;
  envelope.kind = EnvelopeKind::kRaft;
  envelope.message = std::move(message);
  if (throttle_snapshot(envelope)) return;
  options_.transport->send(std::move(envelope));
}

void Node::Impl::request_sync(node::GroupReplica& replica) {
  const GroupId group = replica.group();
  std::weak_ptr<Impl> weak = weak_from_this();
  syncer_->request(replica.log_store(), [weak, group](Result<LogIndex> durable) {
    auto self = weak.lock();
    if (!self) return;
    self->post([group, durable = std::move(durable)](Impl& impl) mutable {
      auto it = impl.groups_.find(group);
      if (it != impl.groups_.end()) it->second->on_synced(std::move(durable));
    });
  });
}

void Node::Impl::fail_node(const Status& why) {
  {
    std::lock_guard lock(failure_mu_);
    if (!failure_.is_ok()) return;
    failure_ = why;
  }
  ready_ = false;
  nodenomad::log(LogLevel::kError, "node",
                 fmt::format("{}: stopped serving: {}", options_.id.str(), why.to_string()));
}

void Node::Impl::on_replica_failed(GroupId group, const Status& why) {
  // A failed fsync or write stops the whole node (the PostgreSQL lesson):
  // its other groups share the disk and the process.
  fail_node(why.with_context(fmt::format("group {}", group.value())));
}

void Node::Impl::on_soft_state(GroupId group, const SoftState& soft) {
  if (group == kMetadataGroup) {
    if (soft.role == RaftRole::kLeader) post([](Impl& self) { self.log_bootstrap(); });
    return;
  }
  const ShardId shard = shard_of_group(group);
  leader_hints_.from_replica(shard, soft.leader);
  if (soft.leader.empty()) return;
  auto waiting = awaiting_leader_.find(shard);
  if (waiting == awaiting_leader_.end()) return;
  std::vector<std::uint64_t> ids = std::move(waiting->second);
  awaiting_leader_.erase(waiting);
  // Routed from a task of their own: this runs inside the replica's Ready
  // handling, which a local proposal must not re-enter.
  post([ids = std::move(ids)](Impl& self) {
    for (const std::uint64_t id : ids) {
      auto it = self.requests_.find(id);
      if (it == self.requests_.end() || !it->second.waiting) continue;
      ++self.resumed_on_leader_;
      self.resume(id, it->second.attempt);
    }
  });
}

void Node::Impl::run_off_loop(std::function<Status()> work, std::function<void(Status)> done) {
  std::weak_ptr<Impl> weak = weak_from_this();
  disk_worker_.submit([weak, work = std::move(work), done = std::move(done)]() mutable {
    Status status = work();
    if (auto self = weak.lock()) {
      self->post([status = std::move(status), done = std::move(done)](Impl&) mutable {
        done(std::move(status));
      });
    }
  });
}

std::unique_ptr<SnapshotSource> Node::Impl::prefetch_snapshot(
    GroupId group, std::unique_ptr<SnapshotSource> source) {
  // Enough chunks ahead to refill the Raft window (max_snapshot_chunks_in_flight).
  constexpr std::size_t kPrefetchChunks = 4;
  std::weak_ptr<Impl> weak = weak_from_this();
  auto schedule = [weak](std::function<void()> task) {
    if (auto self = weak.lock()) self->snapshot_worker_.submit(std::move(task));
  };
  auto on_ready = [weak, group] {
    if (auto self = weak.lock()) {
      self->post([group](Impl& me) {
        auto it = me.groups_.find(group);
        if (it != me.groups_.end()) it->second->snapshot_chunks_ready();
      });
    }
  };
  return std::make_unique<node::PrefetchingSnapshotSource>(
      std::move(source), options_.migration_chunk_bytes, kPrefetchChunks, std::move(schedule),
      std::move(on_ready));
}

void Node::Impl::on_applied(GroupId group) {
  if (group == kMetadataGroup) refresh_from_metadata();
}

void Node::Impl::refresh_from_metadata() {
  std::shared_ptr<const ClusterMetadata> current = metadata_->current();
  {
    std::lock_guard lock(view_mu_);
    if (view_ == current) return;
    view_ = current;
  }
  for (const Member& m : current->members()) {
    if (m.id != options_.id && !m.address.empty()) options_.transport->set_peer(m.id, m.address);
  }
  ready_ = failure().is_ok() && current->find_member(options_.id) != nullptr;
  if (started_) ensure_shard_groups();
}

void Node::Impl::on_envelope(Envelope envelope) {
  // Transport thread: queue it and return.
  post([envelope = std::move(envelope)](Impl& self) mutable {
    self.unreachable_since_ms_.erase(envelope.from);
    switch (envelope.kind) {
      case EnvelopeKind::kRaft: {
        auto it = self.groups_.find(envelope.group);
        if (it != self.groups_.end()) it->second->step(envelope.message);
        break;
      }
      case EnvelopeKind::kRequest: self.serve_forwarded(envelope); break;
      case EnvelopeKind::kResponse:
        if (!self.on_admin_response(envelope)) self.on_response(envelope);
        break;
    }
  });
}

void Node::Impl::on_peer_unreachable(const NodeId& peer) {
  post([peer](Impl& self) {
    self.unreachable_since_ms_.try_emplace(peer, self.now_ms());
    for (auto& [group, replica] : self.groups_) replica->report_unreachable(peer);
  });
}

// --- Node: the public face posts onto the loop ---

Result<std::unique_ptr<Node>> Node::open(NodeOptions options) {
  auto impl = std::make_shared<Impl>(std::move(options));
  const Status opened = impl->open();
  if (!opened.is_ok()) {
    impl->stop();
    return opened;
  }
  NN_RETURN_IF_ERROR(impl->options().transport->start(*impl));
  impl->start();
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
  stop();
  impl_.reset();
}

void Node::stop() {
  if (!impl_ || stopped_.exchange(true)) return;
  impl_->options().transport->stop();
  if (impl_->options().loop != nullptr && !impl_->options().loop->in_loop()) {
    // A borrowed loop keeps running: stop on it, and wait.
    std::promise<void> done;
    auto impl = impl_;
    impl_->options().loop->post([impl, &done] {
      impl->stop();
      done.set_value();
    });
    done.get_future().wait();
  } else {
    impl_->stop();
  }
}

const NodeId& Node::node_id() const { return impl_->options().id; }
bool Node::is_ready() const { return impl_->ready(); }
Status Node::failure() const { return impl_->failure(); }
std::string Node::metrics_text() const { return impl_->metrics_text(); }

NodeRequestCounters Node::request_counters() const { return impl_->request_counters(); }

NodeRequestCounters Node::Impl::request_counters() const {
  return NodeRequestCounters{requests_local_.load(), requests_forwarded_.load(), retries_.load(),
                             resumed_on_leader_.load(), timeouts_.load()};
}

std::vector<NodeGroupStatus> Node::group_status() const { return impl_->group_status(); }

}  // namespace nodenomad
