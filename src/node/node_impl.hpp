// Node::Impl: the composed machine. Everything here runs on the node's
// event loop (loop_), except what is marked otherwise; the public Node posts
// onto it. Split by concern:
//   node.cpp           opening (bootstrap, restart, join), stop, the Raft
//                      plumbing between groups, transport and disk thread
//   node_requests.cpp  client calls: routing, forwarding, retries, deadlines
//   node_cluster.cpp   cluster info, membership, TTL expiry, metrics
#pragma once

#include <atomic>
#include <deque>
#include <set>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "node/background_worker.hpp"
#include "node/disk_syncer.hpp"
#include "node/group_replica.hpp"
#include "node/leader_hints.hpp"
#include "node/migration_wire.hpp"
#include "node/node_rpc.hpp"
#include "node/token_bucket.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "nodenomad/storage/storage_engine.hpp"

namespace nodenomad {

namespace node {
class MigrationCoordinator;
class PacedRemoval;
}

class Node::Impl final : public node::ReplicaHost,
                         public TransportHandler,
                         public std::enable_shared_from_this<Node::Impl> {
 public:
  explicit Impl(NodeOptions options);
  ~Impl() override;

  // --- opening (node.cpp), on the caller's thread before the loop runs ---
  Status open();
  void start();
  void stop();

  // Runs `fn` on the loop if the node is still alive then.
  void post(std::function<void(Impl&)> fn);
  void post_after(std::uint64_t delay_ms, std::function<void(Impl&)> fn);

  // --- ReplicaHost ---
  void send_raft(GroupId group, Message message) override;
  void request_sync(node::GroupReplica& replica) override;
  void on_replica_failed(GroupId group, const Status& why) override;
  void on_soft_state(GroupId group, const SoftState& soft) override;
  NodeRequestCounters request_counters() const;
  void on_applied(GroupId group) override;
  void run_off_loop(std::function<Status()> work, std::function<void(Status)> done) override;
  // Lets go of a capture on the digest worker: the records overwritten
  // while it lived (about 60,000 after a 1.5 s Verify at 40,000 writes/s)
  // are freed by whoever drops it last, and on the loop that stalled every
  // write 35-60 ms (migration_bench).
  void drop_off_loop(std::shared_ptr<const StateCapture> capture) {
    if (capture) worker_.submit([capture = std::move(capture)]() mutable { capture.reset(); });
  }
  void post_to_loop(std::function<void()> fn) override {
    post([fn = std::move(fn)](Impl&) { fn(); });
  }
  // A shard's outgoing snapshot streams, read ahead on snapshot_worker_.
  std::unique_ptr<SnapshotSource> prefetch_snapshot(GroupId group,
                                                    std::unique_ptr<SnapshotSource> source);

  // --- TransportHandler (transport threads) ---
  void on_envelope(Envelope envelope) override;
  void on_peer_unreachable(const NodeId& peer) override;

  // --- client calls (node_requests.cpp), on the loop ---
  void start_request(node::RpcRequest request, KvCallback done);
  void serve_forwarded(const Envelope& envelope);
  void on_response(const Envelope& envelope);

  // --- cluster (node_cluster.cpp), on the loop ---
  void call_admin(const NodeId& to, node::RpcRequest rpc,
                  std::function<void(Result<node::RpcResponse>)> done);
  bool on_admin_response(const Envelope& envelope);
  void serve_admin(const node::RpcRequest& rpc, std::function<void(node::RpcResponse)> answer);
  std::vector<node::ReplicaStats> local_replica_stats() const;
  void add_node_attempt(NodeId id, std::string address, int tries, NodeId hint,
                        std::function<void(Status)> done);
  void add_member_here(NodeId id, std::string address, std::function<void(Status, NodeId)> done);
  void add_metadata_learner(NodeId id, int tries, std::function<void(Status)> done);
  ClusterInfo assemble_cluster_info(const ClusterMetadata& view,
                                    const std::map<NodeId, std::vector<node::ReplicaStats>>& stats);
  std::vector<NodeGroupStatus> group_status_here() const;
  void cluster_info(std::function<void(Result<ClusterInfo>)> done);
  void add_node(NodeId id, std::string address, std::function<void(Status)> done);
  void expire_ttl();
  std::string metrics_text() const;  // any thread
  std::vector<NodeGroupStatus> group_status() const;

  // --- migration (node_migration.cpp: the shard leader's, the target's and
  // the source's sides; migration_coordinator.cpp: the metadata leader's) ---
  std::shared_ptr<const ClusterMetadata> view() const;
  bool leads_metadata() const;
  // The transport reported `peer` unreachable, and nothing came from it since.
  bool peer_unreachable(const NodeId& peer) const { return unreachable_since_ms_.contains(peer); }
  NodeId metadata_leader() const;
  void propose_metadata(const MetadataCommand& command,
                        std::function<void(Result<MetadataResult>)> done);
  // Runs a migration call on the metadata leader (here, or forwarded there).
  void migration_admin(node::AdminCall call, std::function<void(Result<std::string>)> done);
  void serve_migration(const node::RpcRequest& rpc,
                       std::function<void(node::RpcResponse)> answer);
  // Calls the leader of `shard`'s group (found by leader hints, then the
  // placement), wherever it is.
  void call_shard_leader(const node::ShardCall& call,
                         std::function<void(Result<node::ShardReport>)> done);
  std::uint64_t wall_ms() const;
  void digest_replica(ShardId shard, std::function<void(Result<ShardDigest>)> done);
  std::uint64_t now_ms() const;  // the loop's steady clock
  node::MigrationCoordinator& coordinator() { return *coordinator_; }
  node::GroupReplica& metadata_replica() { return *groups_.at(kMetadataGroup); }
  std::uint64_t migration_snapshot_bytes_sent() const { return snapshot_bytes_sent_.load(); }

  const NodeOptions& options() const { return options_; }
  bool ready() const { return ready_.load(); }
  Status failure() const;

 private:
  struct Request {
    node::RpcRequest rpc;
    KvCallback done;
    ShardId shard;
    std::uint64_t deadline_ms = 0;  // on the loop's steady clock
    std::uint32_t attempt = 0;
    // A write that may have reached a log: a deadline then means "unknown".
    bool maybe_applied = false;
    // The attempt's forwarded request id; 0 while none is in flight.
    std::uint64_t in_flight_id = 0;
    NodeId in_flight_to;
    // Waiting to be routed again (retry_later): by its timer, or sooner by
    // the shard's next known leader. Whichever comes first routes it.
    bool waiting = false;
  };
  struct Inbound {  // a forwarded request being served here
    NodeId from;
    std::uint64_t request_id = 0;
  };

  // node.cpp
  Status open_existing();
  Status bootstrap();
  Status open_metadata_group(bool fresh_bootstrap);
  Status open_shard_group(ShardId shard, const std::vector<NodeId>* bootstrap_voters);
  Status write_marker();
  std::string group_log_dir(GroupId group) const;
  std::string shard_data_dir(ShardId shard) const;
  RaftConfig raft_config_for(GroupId group) const;
  void tick();
  void log_bootstrap();
  void refresh_from_metadata();
  void fail_node(const Status& why);

  // node_migration.cpp
  // The leader's side of one Verify (DESIGN.md section 3, stage 3).
  struct VerifySession {
    std::string op_id;
    NodeId target;
    enum class Phase { kIdle, kDigesting, kMatched, kFailed } phase = Phase::kIdle;
    LogIndex index;
    std::shared_ptr<const StateCapture> capture;  // the leader's state at `index`
    std::optional<ShardDigest> leader_digest;
    std::optional<ShardDigest> target_digest;
    std::uint32_t round = 0;  // repairs sent
    std::uint32_t mismatches = 0;
    bool call_in_flight = false;
    std::string note;
  };

  // The target's side: held at `index` while its digest is compared.
  struct TargetSession {
    std::string op_id;
    LogIndex index;
    std::uint32_t round = 0;
    bool aborted = false;  // it was past `index`, or a snapshot replaced its state
    std::string digest;    // encoded, once computed for `round`
  };

  // Snapshot chunks for one (group, peer) waiting for the bandwidth limits.
  struct SnapshotQueue {
    node::TokenBucket bucket;  // the operation's own limit
    bool paused = false;
    std::uint64_t refreshed_ms = 0;  // the coordinator's last word
    std::deque<Envelope> waiting;
    bool scheduled = false;
  };
  void ensure_shard_groups();
  void serve_migrate_shard(const node::ShardCall& call,
                           std::function<void(node::RpcResponse)> answer);
  void verify_step(node::GroupReplica& replica, const node::ShardCall& call,
                   node::ShardReport& report);
  void start_verify(node::GroupReplica& replica, VerifySession& v);
  void compare_digests(ShardId shard, VerifySession& v);
  void serve_migrate_target(const node::TargetCall& call,
                            std::function<void(node::RpcResponse)> answer);
  void digest_target(ShardId shard);
  void serve_drop_shard(ShardId shard, Epoch min_epoch,
                        std::function<void(node::RpcResponse)> answer, int tries);
  Result<std::uint64_t> drop_shard_group(ShardId shard);
  // Moves `dir` aside under a trash name in its parent (one rename) for
  // the disk worker to delete; remove_trash() deletes what a crash left.
  Result<std::string> move_to_trash(const std::string& dir);
  // Frees a dropped shard's records a slice per loop task.
  void release_remains(const std::shared_ptr<StateRemains>& remains);
  // Deletes a dropped shard's files a slice per disk-worker task, a pause
  // (a loop timer) between slices (paced_removal.hpp says why).
  void remove_paced(std::shared_ptr<node::PacedRemoval> removal);
  Status remove_trash();
  bool throttle_snapshot(Envelope& envelope);
  void pump_snapshot_queue(GroupId group, NodeId to);
  void migration_admin_attempt(node::AdminCall call, int tries, NodeId hint,
                               std::function<void(Result<std::string>)> done);

  // node_requests.cpp
  void route(std::uint64_t id);
  void attempt_local(std::uint64_t id, node::GroupReplica& replica);
  void attempt_remote(std::uint64_t id, const NodeId& target);
  void finish(std::uint64_t id, KvReply reply);
  void retry_later(std::uint64_t id, const NodeId& hint);
  void on_deadline(std::uint64_t id);
  void expire_requests();
  void resume(std::uint64_t id, std::uint32_t attempt);  // routes a waiting request once  // each tick: on_deadline() for the requests past theirs
  NodeId pick_target(const Request& request) const;
  void execute_locally(node::GroupReplica& replica, const node::RpcRequest& rpc,
                       std::function<void(node::RpcResponse)> done);
  void execute_write(node::GroupReplica& replica, const node::RpcRequest& rpc,
                     std::function<void(node::RpcResponse)> done);
  void execute_read(node::GroupReplica& replica, const node::RpcRequest& rpc,
                    std::function<void(node::RpcResponse)> done);
  KvReply read_now(ShardId shard, const std::string& key);
  node::GroupReplica* shard_replica(ShardId shard);
  Status validate(const node::RpcRequest& rpc) const;

  NodeOptions options_;
  std::unique_ptr<ThreadEventLoop> own_loop_;
  EventLoop* loop_ = nullptr;
  FileSystem* fs_ = nullptr;
  Clock* clock_ = nullptr;
  std::unique_ptr<node::DiskSyncer> syncer_;
  Rng rng_;

  std::map<GroupId, std::unique_ptr<node::GroupReplica>> groups_;
  std::map<ShardId, std::shared_ptr<StorageEngine>> storage_;
  std::shared_ptr<MetadataStateMachine> metadata_;
  // The ShardMap and members as last applied (shared with other threads).
  mutable std::mutex view_mu_;
  std::shared_ptr<const ClusterMetadata> view_;
  node::LeaderHints leader_hints_;
  std::map<NodeId, std::uint64_t> unreachable_since_ms_;
  std::map<GroupId, bool> expiring_;  // an expiry proposal is in flight

  std::map<std::uint64_t, Request> requests_;  // by local request id
  // The local requests' deadlines in arrival order, (deadline_ms, id). All
  // share one timeout, so the front is the soonest; tick() answers those
  // past it. (A timer per request kept ~100k timers in asio's heap at 20k
  // writes/s and cost the loop 8-13% of its time: docs/node.md.)
  std::deque<std::pair<std::uint64_t, std::uint64_t>> request_deadlines_;
  // Requests waiting out a leader change of a shard this node holds a
  // replica of; on_soft_state() routes them as soon as a leader is known
  // (a leadership transfer takes a few ms; the retry timer waits 50+).
  std::map<ShardId, std::vector<std::uint64_t>> awaiting_leader_;
  std::map<std::uint64_t, std::uint64_t> forwarded_;  // wire id -> local id
  std::map<std::uint64_t, std::function<void(Result<node::RpcResponse>)>> admin_calls_;
  std::uint64_t next_id_ = 1;  // start() moves it past every earlier incarnation's ids
  // Forwarded requests served lately, by (sender, request id), oldest first:
  // a transport may duplicate an envelope, and a duplicated write must not
  // be applied twice. Kept kServedMemoryMs (node_serve.cpp).
  std::set<std::pair<NodeId, std::uint64_t>> served_;
  std::deque<std::pair<std::uint64_t, std::pair<NodeId, std::uint64_t>>> served_order_;

  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  mutable std::mutex failure_mu_;
  Status failure_;
  std::uint64_t ticks_ = 0;
  bool bootstrap_proposed_ = false;
  bool started_ = false;  // open() is done: groups may be created at runtime

  // Migration state (node_migration.cpp).
  std::unique_ptr<node::MigrationCoordinator> coordinator_;
  // Background threads below the loop's CPU priority (nice 10): shard
  // digests, and the chunks of outgoing snapshot streams read ahead.
  node::BackgroundWorker worker_{"nn-digest", 10};
  node::BackgroundWorker snapshot_worker_{"nn-snapshot", 10};
  // Whole-shard disk work, in order: compaction snapshot files, and freeing
  // a dropped shard's state and files (after any compaction of it).
  node::BackgroundWorker disk_worker_{"nn-disk-work"};
  std::uint64_t trash_seq_ = 0;
  std::map<ShardId, std::unique_ptr<VerifySession>> verify_sessions_;  // as shard leader
  std::map<ShardId, std::unique_ptr<TargetSession>> target_sessions_;  // as target
  // As target: the operation per shard whose Update has begun (a promote's
  // release); a later hold for it is refused.
  std::map<ShardId, std::string> promoted_ops_;
  std::map<std::pair<GroupId, NodeId>, std::unique_ptr<SnapshotQueue>> snapshot_queues_;
  node::TokenBucket node_bucket_;
  std::atomic<std::uint64_t> snapshot_bytes_sent_{0};
  std::atomic<std::uint64_t> shards_dropped_{0};
  std::atomic<std::uint64_t> bytes_freed_{0};

  // Counters for /metrics (loop thread writes, any thread reads).
  std::atomic<std::uint64_t> requests_local_{0};
  std::atomic<std::uint64_t> requests_forwarded_{0};
  std::atomic<std::uint64_t> requests_served_for_peers_{0};
  std::atomic<std::uint64_t> requests_relayed_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> resumed_on_leader_{0};  // retries a new leader started early
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> keys_expired_{0};
};

}  // namespace nodenomad
