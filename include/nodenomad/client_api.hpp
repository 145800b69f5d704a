// ClientApi: what an application (or the HTTP front door) asks of a running
// node. Node implements it; HttpApi serves it; tests can fake it.
//
// Every call is asynchronous and answers exactly once through its callback,
// on a thread of the implementation's choosing (a Node answers on its event
// loop): a callback must not block, and must not assume its caller's thread.
//
// Answers (KvReply::status):
//   kOk               it took effect (a write is committed and applied)
//   kNotFound         get: the key is missing or expired
//   kVersionMismatch  if_version did not match; current_version says what is
//   kInvalidArgument  the request is wrong (the message names the field and
//                     the accepted form: key length, value size, ttl ...)
//   kUnavailable      not applied, and safe to retry: no leader or quorum for
//                     the shard right now, the node is stopping, or a queue
//                     is full
//   kTimeout          the outcome is unknown: the write may or may not have
//                     been applied (never answered for a write known not to
//                     have been applied)
//   kFailed           this node is failed (a disk error) and serves nothing
//
// Thread safety: every method may be called from any thread, concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/migration/migration_status.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

enum class ReadConsistency : std::uint8_t {
  kLinearizable = 0,  // ReadIndex on the shard leader (the default)
  kLease = 1,         // the leader's lease, no round trip while it holds
  kStale = 2,         // any replica's applied state, possibly behind
};

struct PutOptions {
  std::optional<std::uint64_t> ttl_ms;      // > 0; none: never expires
  std::optional<std::uint64_t> if_version;  // compare-and-set; 0 = only if absent
};

struct RemoveOptions {
  std::optional<std::uint64_t> if_version;
};

struct GetOptions {
  ReadConsistency consistency = ReadConsistency::kLinearizable;
};

struct KvReply {
  Status status;
  std::uint64_t version = 0;          // put: the new version; get: the value's version
  std::uint64_t current_version = 0;  // kVersionMismatch: the key's version (0 = absent)
  bool deleted = false;               // remove: a live key was removed
  std::string value;                  // get
  std::optional<std::uint64_t> expires_in_ms;  // get: the value has a TTL
};

using KvCallback = std::function<void(KvReply)>;

struct ClusterNodeInfo {
  NodeId id;
  std::string address;  // "host:port"
  std::string status;   // "up", "down", "joining", "leaving"
  std::uint32_t shards_hosted = 0;
  std::uint32_t shards_led = 0;
};

struct ShardInfo {
  ShardId id;
  Epoch epoch;
  std::vector<NodeId> replicas;  // voters
  std::vector<NodeId> learners;
  NodeId leader;                 // empty: unknown
  std::uint64_t keys = 0;        // as last reported by a replica; 0 when unknown
  std::uint64_t bytes = 0;
};

struct ClusterInfo {
  std::string cluster_id;
  NodeId metadata_leader;  // empty: unknown
  std::vector<ClusterNodeInfo> nodes;
  std::vector<ShardInfo> shards;
};

class ClientApi {
 public:
  virtual ~ClientApi() = default;

  virtual void put(std::string key, std::string value, PutOptions options, KvCallback done) = 0;
  virtual void get(std::string key, GetOptions options, KvCallback done) = 0;
  virtual void remove(std::string key, RemoveOptions options, KvCallback done) = 0;

  // The cluster as the metadata group knows it, with per-shard figures.
  virtual void cluster_info(std::function<void(Result<ClusterInfo>)> done) = 0;
  // Adds a member (it joins as a metadata learner and hosts no shard until
  // a migration moves one to it). kOk once the change is committed.
  virtual void add_node(NodeId id, std::string address, std::function<void(Status)> done) = 0;

  // --- shard migrations (docs/migration.md) ---
  // Served by the metadata group's leader (a node forwards them there).
  // Errors: kInvalidArgument naming the rule a request broke (the plan's
  // checks, an unknown node, a bandwidth of 0 for kSetBandwidth); kNotFound
  // for an unknown operation id; kVersionMismatch when the placement changed
  // under the request (plan again); kUnavailable when no metadata leader is
  // reachable. An implementation without migrations answers kNotSupported.

  // Moves one replica of each shard from source to target.
  virtual void create_migration(MigrationRequest request,
                                std::function<void(Result<MigrationBatch>)> done) {
    (void)request;
    done(Status::not_supported("this ClientApi does not migrate shards"));
  }
  // The moves that make the actual placement match the ring's.
  virtual void rebalance(std::function<void(Result<MigrationBatch>)> done) {
    done(Status::not_supported("this ClientApi does not migrate shards"));
  }
  // Marks `id` leaving and moves every replica it holds away; the member is
  // removed once it holds none.
  virtual void drain_node(NodeId id, std::function<void(Result<MigrationBatch>)> done) {
    (void)id;
    done(Status::not_supported("this ClientApi does not migrate shards"));
  }
  // Every operation the metadata group records, oldest first.
  virtual void list_migrations(std::function<void(Result<std::vector<MigrationStatus>>)> done) {
    done(Status::not_supported("this ClientApi does not migrate shards"));
  }
  virtual void get_migration(std::string id, std::function<void(Result<MigrationStatus>)> done) {
    (void)id;
    done(Status::not_supported("this ClientApi does not migrate shards"));
  }
  // Cancel (rolls back before Update, finishes after it), pause, resume, or
  // set the operation's bandwidth limit (bytes/s, > 0). Answers the status
  // after the control was recorded.
  virtual void control_migration(std::string id, MigrationControl control,
                                 std::uint64_t bandwidth_bytes_per_s,
                                 std::function<void(Result<MigrationStatus>)> done) {
    (void)id;
    (void)control;
    (void)bandwidth_bytes_per_s;
    done(Status::not_supported("this ClientApi does not migrate shards"));
  }

  // This node's id; never changes.
  virtual const NodeId& node_id() const = 0;
  // True once the node has joined its cluster and caught up with the
  // metadata group (the /ready probe).
  virtual bool is_ready() const = 0;
  // This node's own metrics in Prometheus text exposition format (Raft,
  // WAL, shard figures); the HTTP layer adds its request metrics.
  virtual std::string metrics_text() const = 0;
};

}  // namespace nodenomad
