// A small in-process cluster of Nodes on the InMemoryTransport, each with
// its own data directory, for the node tests.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nodenomad/in_memory_transport.hpp"
#include "nodenomad/node.hpp"

namespace nodenomad::node_test {

inline NodeId node(int i) { return NodeId("node-" + std::to_string(i)); }

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "nn-node-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `done` until it holds or `timeout` passes; says what it waited for.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling, with a deadline
  }
  return done();
}

struct TestCluster {
  explicit TestCluster(int size, std::uint32_t shards = 8) : shard_count(shards) {
    for (int i = 1; i <= size; ++i) members.push_back({node(i), "mem:" + std::to_string(i)});
    for (int i = 1; i <= size; ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      transports.push_back(nullptr);
      nodes.push_back(nullptr);
    }
  }

  NodeOptions options_for(int i) const {
    NodeOptions o;
    o.id = node(i);
    o.initial_members = members;
    o.data_dir = dirs[static_cast<std::size_t>(i - 1)]->path();
    o.shard_count = shard_count;
    o.tick_ms = 10;
    o.request_timeout_ms = 3'000;
    o.ttl_scan_interval_ms = 50;
    return o;
  }

  void start(int i, const std::function<void(NodeOptions&)>& tweak = nullptr) {
    const std::size_t k = static_cast<std::size_t>(i - 1);
    transports[k] = network.connect(node(i));
    NodeOptions o = options_for(i);
    o.transport = transports[k].get();
    if (tweak) tweak(o);
    Result<std::unique_ptr<Node>> opened = Node::open(o);
    INFO(opened.status().to_string());
    REQUIRE(opened.is_ok());
    nodes[k] = std::move(*opened);
  }
  void start_all() {
    for (int i = 1; i <= static_cast<int>(nodes.size()); ++i) start(i);
  }
  void stop(int i) {
    const std::size_t k = static_cast<std::size_t>(i - 1);
    nodes[k].reset();
    transports[k].reset();
  }
  Node& at(int i) { return *nodes[static_cast<std::size_t>(i - 1)]; }

  // A put that retries "not applied" answers until the cluster has leaders.
  KvReply put_until_ok(int via, const std::string& key, const std::string& value) {
    KvReply reply;
    eventually([&] {
      reply = at(via).put(key, value).get();
      return reply.status.is_ok();
    });
    return reply;
  }

  std::uint32_t shard_count;
  InMemoryNetwork network;
  std::vector<NodeMember> members;
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<InMemoryTransport>> transports;
  std::vector<std::unique_ptr<Node>> nodes;
};

}  // namespace nodenomad::node_test
