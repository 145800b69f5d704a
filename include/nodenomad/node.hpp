// Node: one machine of a NodeNomad cluster, embeddable. It hosts the
// metadata Raft group (membership and the ShardMap) when it is one of its
// replicas, a Raft group per shard replica it holds (multi-raft), one
// replicated StorageEngine per shard, and routing: any node accepts any
// request and forwards it to the shard's leader over the Transport.
//
//   InMemoryNetwork network;                 // or AsioTransport for TCP
//   auto transport = network.connect(NodeId("node-1"));
//   NodeOptions options;
//   options.id = NodeId("node-1");
//   options.initial_members = {{NodeId("node-1"), ""}, {NodeId("node-2"), ""}, ...};
//   options.data_dir = "/var/lib/nodenomad";
//   options.transport = transport.get();
//   auto node = Node::open(options);         // bootstraps, or restarts from data_dir
//   KvReply reply = (*node)->put("k", "v").get();
//
// Runtime (DESIGN.md section 5): every group, the routing and the client
// requests run on one EventLoop (its own thread unless the host gives one);
// one disk thread fsyncs the Raft logs of all groups in batches; ticks come
// from the loop's steady timer. Application threads talk to the node only
// through the ClientApi (callbacks) or the future-returning overloads.
//
// Starting: with an empty data_dir and initial_members (CLUSTER_NODES), the
// node bootstraps its part of a new cluster: every founder computes the same
// initial ShardMap from the same member list (ConsistentHashRing placement),
// so no coordination is needed. With existing data it restarts from it (the
// member list is then ignored: the cluster's own record wins). With `join`
// set and no data, it waits to be added by a member (add_node, POST
// /v1/cluster/nodes) and learns the cluster from the metadata group.
//
// Errors: open() answers kInvalidArgument naming the option, kIOError or
// kCorruption for an unreadable data_dir. A failed fsync stops the node for
// good: failure() says why, and every request answers kFailed.
//
// Thread safety: every public method may be called from any thread, except
// stop() and the destructor, which must not run on the node's own loop.
// Lifetime: the Transport, EventLoop, FileSystem and Clock given must
// outlive the node.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "nodenomad/client_api.hpp"
#include "nodenomad/clock.hpp"
#include "nodenomad/event_loop.hpp"
#include "nodenomad/file_system.hpp"
#include "nodenomad/raft/raft_config.hpp"
#include "nodenomad/raft/ready.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "nodenomad/transport.hpp"

namespace nodenomad {

class StorageEngine;

namespace node {
struct AdminCall;
}

struct NodeMember {
  NodeId id;
  std::string address;  // "host:port" for AsioTransport; anything for others
};

struct NodeOptions {
  NodeId id;
  std::string cluster_id = "nodenomad";
  // The founding members, this node included (CLUSTER_NODES).
  std::vector<NodeMember> initial_members;
  // Wait to be added to an existing cluster instead of founding one.
  bool join = false;
  // This node's own address as peers should reach it (announced on join).
  std::string advertise_address;

  std::string data_dir;   // shard state and metadata snapshots
  std::string wal_dir;    // Raft logs; empty: data_dir

  std::uint32_t shard_count = 64;         // fixed at cluster creation
  std::uint32_t replication_factor = 3;   // per shard
  std::uint32_t metadata_replicas = 5;    // voters of the metadata group

  std::uint32_t tick_ms = 50;
  // Timeouts in ticks; the id is set per group. read_mode kLease lets
  // ReadConsistency::kLease reads skip the heartbeat round.
  RaftConfig raft = default_raft_config();
  std::uint64_t request_timeout_ms = 5'000;
  // TTL: how often shard leaders look for expired keys, and the most keys
  // one expiry proposal removes.
  std::uint32_t ttl_scan_interval_ms = 1'000;
  std::uint32_t max_expire_batch_keys = 1'000;
  // Raft log compaction: a snapshot of a shard's state every this many
  // applied entries, once the entries applied since the last one hold at
  // least compact_log_fraction of the state's bytes, or the state is under
  // compact_small_state_bytes. A snapshot writes the whole state, so for a
  // large shard the log since the last one must be worth it: at 0.5, a
  // shard writes at most about 3 bytes per byte of its log (the log, then
  // the snapshots). Below the size, every compact_every_entries.
  std::uint64_t compact_every_entries = 10'000;
  double compact_log_fraction = 0.5;
  std::uint64_t compact_small_state_bytes = 64ull << 20;
  // Limits on what a client may store (also enforced by the HTTP layer).
  std::uint32_t max_key_bytes = 1024;
  std::uint32_t max_value_bytes = 1u << 20;
  // Requests in flight on this node (local and forwarded); beyond it,
  // kUnavailable.
  std::uint32_t max_inflight_requests = 100'000;

  // Shard migration (docs/migration.md). Operations running at once in the
  // whole cluster (MAX_CONCURRENT_MIGRATIONS) and per node, as source or
  // target; more wait, queued.
  std::uint32_t max_concurrent_migrations = 3;
  std::uint32_t max_node_migrations = 3;
  // Snapshot bytes per chunk of a transfer (MIGRATION_CHUNK_SIZE).
  std::uint64_t migration_chunk_bytes = 1u << 20;
  // A stage that makes no progress for this long rolls the operation back
  // (before Update) or is completed (after it) (MIGRATION_TIMEOUT).
  std::uint64_t migration_timeout_ms = 30'000;
  // Snapshot bytes/s this node sends to all migration targets together;
  // 0 = no limit (MIGRATION_BANDWIDTH).
  std::uint64_t migration_bandwidth_bytes_per_s = 0;
  // Plan and start a rebalance when a member joins.
  bool rebalance_on_join = true;
  // Spread shard leadership: when one node leads two or more shards more
  // than another, hand one of them over (one transfer per sweep).
  bool balance_leaders = true;
  // How often the metadata leader asks every member what it hosts, drops
  // copies no placement names, and spreads leaders.
  std::uint64_t maintenance_interval_ms = 10'000;

  // Borrowed: each of these must outlive the Node (destroy the Node first).
  Transport* transport = nullptr;   // required
  EventLoop* loop = nullptr;        // nullptr: the node runs its own thread
  FileSystem* file_system = nullptr;  // nullptr: the POSIX file system
  Clock* clock = nullptr;           // nullptr: the system clock
  // Deterministic simulation: run the disk syncs and background work (shard
  // digests) as tasks of this loop instead of on the node's own threads, so
  // that a run depends only on the loop's order. nullptr: threads.
  EventLoop* background_loop = nullptr;
  std::uint64_t seed = 0;           // election jitter; 0: from the node id

  // Tests only (leave empty): called on the loop just before this node, as
  // a migration target, digests `shard` for Verify at the held `index`:
  // round 0, then once after each repair. A test changes the state here to
  // make the replica diverge from its leader, which Verify must then find
  // and repair.
  std::function<void(ShardId shard, LogIndex index, std::uint32_t round, StorageEngine& state)>
      before_verify_digest_for_testing;

  static RaftConfig default_raft_config();
};

// What the node hosts right now (tests, status pages).
struct NodeGroupStatus {
  GroupId group;
  RaftRole role = RaftRole::kFollower;
  NodeId leader;
  Term term;
  LogIndex commit;
  LogIndex applied;
};

// How this node's client requests went (any thread; unlike metrics_text(),
// never waits for the loop).
struct NodeRequestCounters {
  std::uint64_t local = 0;      // started on this node
  std::uint64_t forwarded = 0;  // attempts sent to another node
  std::uint64_t retries = 0;
  std::uint64_t resumed_on_leader = 0;  // retries a new leader sent on before their timer
  std::uint64_t timeouts = 0;
};

class Node final : public ClientApi {
 public:
  static Result<std::unique_ptr<Node>> open(NodeOptions options);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Graceful stop: no new requests (later calls answer kUnavailable); those
  // in flight are answered (kUnavailable if not applied, kTimeout if the
  // outcome is open); the disk thread finishes its batch; the transport is
  // stopped but left to its owner. Idempotent.
  void stop();

  // --- ClientApi (callbacks run on the node's loop) ---
  void put(std::string key, std::string value, PutOptions options, KvCallback done) override;
  void get(std::string key, GetOptions options, KvCallback done) override;
  void remove(std::string key, RemoveOptions options, KvCallback done) override;
  void cluster_info(std::function<void(Result<ClusterInfo>)> done) override;
  void add_node(NodeId id, std::string address, std::function<void(Status)> done) override;
  const NodeId& node_id() const override;
  bool is_ready() const override;
  std::string metrics_text() const override;
  void create_migration(MigrationRequest request,
                        std::function<void(Result<MigrationBatch>)> done) override;
  void rebalance(std::function<void(Result<MigrationBatch>)> done) override;
  void drain_node(NodeId id, std::function<void(Result<MigrationBatch>)> done) override;
  void list_migrations(std::function<void(Result<std::vector<MigrationStatus>>)> done) override;
  void get_migration(std::string id, std::function<void(Result<MigrationStatus>)> done) override;
  void control_migration(std::string id, MigrationControl control,
                         std::uint64_t bandwidth_bytes_per_s,
                         std::function<void(Result<MigrationStatus>)> done) override;

  // --- the same, as futures ---
  std::future<KvReply> put(std::string key, std::string value, PutOptions options = {});
  std::future<KvReply> get(std::string key, GetOptions options = {});
  std::future<KvReply> remove(std::string key, RemoveOptions options = {});

  // Non-OK once a disk error stopped the node.
  Status failure() const;
  NodeRequestCounters request_counters() const;
  // The groups hosted here (answered from the loop; blocks the caller).
  std::vector<NodeGroupStatus> group_status() const;
  // The cluster's metadata (members, ShardMap, records) as this node's
  // replica last applied it. Any thread.
  std::shared_ptr<const ClusterMetadata> metadata() const;
  // The digest of this node's replica of `shard` at its applied index
  // (tests, checkers): the one the engine keeps, which Verify compares,
  // checked against one recomputed from the records on the background
  // thread (kCorruption if they differ). kNotFound when the shard is not
  // hosted here.
  void shard_digest(ShardId shard, std::function<void(Result<ShardDigest>)> done);

  class Impl;
  // MigrationEngine's way in (node_migration.cpp): runs an encoded migration
  // call on the metadata leader.
  void run_migration_call(node::AdminCall call, std::function<void(Result<std::string>)> done);

 private:
  explicit Node(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
  std::atomic<bool> stopped_{false};
};

}  // namespace nodenomad
