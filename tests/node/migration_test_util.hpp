// Helpers of the migration tests on the in-memory transport: calls that
// wait for their answer, a writer that remembers what was acknowledged, and
// a 4-node cluster whose 4th node joins after the founding.
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/node_rpc.hpp"
#include "node_test_util.hpp"
#include "nodenomad/migration/migration_status.hpp"
#include "nodenomad/sharding/key_to_shard.hpp"

namespace nodenomad::node_test {

template <typename T>
Result<T> wait_for(const std::function<void(std::function<void(Result<T>)>)>& call) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  call([promise](Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

inline Result<MigrationBatch> migrate(Node& via, ShardId shard, int from, int to,
                               std::uint64_t bandwidth = 0) {
  return wait_for<MigrationBatch>([&](auto done) {
    MigrationRequest request;
    request.shards = {shard};
    request.source = node(from);
    request.target = node(to);
    request.bandwidth_bytes_per_s = bandwidth;
    via.create_migration(std::move(request), std::move(done));
  });
}

inline Result<MigrationStatus> status_of(Node& via, const std::string& id) {
  return wait_for<MigrationStatus>([&](auto done) { via.get_migration(id, std::move(done)); });
}

inline Result<ClusterInfo> info_of(Node& via) {
  return wait_for<ClusterInfo>([&](auto done) { via.cluster_info(std::move(done)); });
}

// Waits until the operation ends; answers its last status.
inline MigrationStatus wait_until_ended(TestCluster& cluster, int via, const std::string& id,
                                 std::chrono::seconds timeout = std::chrono::seconds(60)) {
  MigrationStatus last;
  const bool ended = eventually(
      [&] {
        Result<MigrationStatus> s = status_of(cluster.at(via), id);
        if (!s.is_ok()) return false;
        last = *s;
        return migration_stage_terminal(last.stage);
      },
      timeout);
  INFO("operation " << id << " is at " << migration_stage_name(last.stage) << ": " << last.error);
  REQUIRE(ended);
  return last;
}

// Waits until the operation reaches `stage` (or a later one).
inline void wait_for_stage(TestCluster& cluster, int via, const std::string& id,
                           MigrationStage stage) {
  MigrationStatus last;
  const bool reached = eventually([&] {
    Result<MigrationStatus> s = status_of(cluster.at(via), id);
    if (!s.is_ok()) return false;
    last = *s;
    return last.stage >= stage;
  });
  INFO("operation " << id << " is at " << migration_stage_name(last.stage) << ": " << last.error);
  REQUIRE(reached);
}

inline bool hosts_group(Node& n, ShardId shard) {
  for (const NodeGroupStatus& g : n.group_status()) {
    if (g.group == group_of_shard(shard)) return true;
  }
  return false;
}

// Keys that map to `shard` among "key-0", "key-1", ...
inline std::vector<std::string> keys_of_shard(ShardId shard, std::uint32_t shard_count,
                                              std::size_t n) {
  std::vector<std::string> out;
  for (int i = 0; out.size() < n; ++i) {
    std::string key = "key-" + std::to_string(i);
    if (shard_for_key(key, shard_count) == shard) out.push_back(std::move(key));
  }
  return out;
}

// Writes keys of one shard through one node until stopped, remembering the
// last acknowledged value of each key. Every answer must be OK or
// "not applied" (a retry of it comes later); nothing may fail.
class Writer {
 public:
  Writer(Node& via, std::vector<std::string> keys) : via_(via), keys_(std::move(keys)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::map<std::string, std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::uint64_t writes() const { return writes_.load(); }
  std::uint64_t unknown() const { return unknown_.load(); }
  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  void run() {
    for (std::uint64_t i = 0; !stop_; ++i) {
      const std::string& key = keys_[i % keys_.size()];
      const std::string value = "v" + std::to_string(i);
      const KvReply reply = via_.put(key, value).get();
      std::lock_guard lock(mu_);
      if (reply.status.is_ok()) {
        acked_[key] = value;
        ++writes_;
      } else if (reply.status.is(StatusCode::kTimeout)) {
        // Unknown outcome: the key's final value may be this one or the last acked.
        ++unknown_;
        maybe_[key].push_back(value);
      } else if (!reply.status.is(StatusCode::kUnavailable)) {
        errors_.push_back(reply.status.to_string());
      }
    }
  }

  Node& via_;
  std::vector<std::string> keys_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> unknown_{0};
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::map<std::string, std::vector<std::string>> maybe_;
  std::vector<std::string> errors_;
};

// 4 nodes: 1-3 found the cluster (every shard on all three), 4 joins.
inline void start_with_joiner(TestCluster& cluster,
                       const std::function<void(NodeOptions&)>& tweak = nullptr) {
  cluster.members.pop_back();
  auto common = [&](NodeOptions& o) {
    o.compact_every_entries = 50;  // the learner must get a snapshot, not the log
    o.rebalance_on_join = false;
    o.migration_chunk_bytes = 4096;
    if (tweak) tweak(o);
  };
  for (int i = 1; i <= 3; ++i) cluster.start(i, common);
  REQUIRE(cluster.put_until_ok(1, "warm-up", "x").status.is_ok());
  cluster.start(4, [&](NodeOptions& o) {
    o.join = true;
    o.initial_members = cluster.members;
    common(o);
  });
  std::promise<Status> added;
  cluster.at(1).add_node(node(4), "mem:4", [&](Status s) { added.set_value(s); });
  const Status status = added.get_future().get();
  INFO(status.to_string());
  REQUIRE(status.is_ok());
  REQUIRE(eventually([&] { return cluster.at(4).is_ready(); }));
}

// The node among 1-3 that does not lead the metadata group (a source whose
// loss would not also take the coordinator).
inline int non_coordinator(TestCluster& cluster) {
  Result<ClusterInfo> info = info_of(cluster.at(1));
  REQUIRE(info.is_ok());
  for (int i = 1; i <= 3; ++i) {
    if (info->metadata_leader != node(i)) return i;
  }
  return 1;
}
inline std::uint64_t metric(Node& n, const std::string& name) {
  const std::string text = n.metrics_text();
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + name.size() + 2));
}

// A peer that sends hand-made RPCs to a node and waits for the answer.
class HandPeer : public TransportHandler {
 public:
  HandPeer(InMemoryNetwork& network, NodeId id) : transport_(network.connect(id)), id_(id) {
    REQUIRE(transport_->start(*this).is_ok());
  }
  ~HandPeer() override { transport_->stop(); }
  void on_envelope(Envelope envelope) override {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(envelope.request_id);
    if (it == waiting_.end()) return;
    it->second.set_value(node::decode_rpc_response(envelope.payload));
    waiting_.erase(it);
  }
  Result<node::RpcResponse> call(const NodeId& to, const node::RpcRequest& rpc) {
    std::future<Result<node::RpcResponse>> answer;
    Envelope e;
    {
      std::lock_guard lock(mu_);
      e.request_id = ++next_;
      answer = waiting_[e.request_id].get_future();
    }
    e.from = id_;
    e.to = to;
    e.kind = EnvelopeKind::kRequest;
    e.payload = node::encode_rpc_request(rpc);
    transport_->send(std::move(e));
    return answer.get();
  }

 private:
  std::unique_ptr<InMemoryTransport> transport_;
  NodeId id_;
  std::mutex mu_;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, std::promise<Result<node::RpcResponse>>> waiting_;
};

}  // namespace nodenomad::node_test
