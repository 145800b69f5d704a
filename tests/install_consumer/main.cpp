// Built against the installed headers and library only: proves that a host
// project can find_package(NodeNomad) and use its parts, up to a Node.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nodenomad/in_memory_transport.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/storage/storage_engine.hpp"

namespace {

bool node_works(const std::string& dir) {
  using namespace nodenomad;
  InMemoryNetwork network;
  auto transport = network.connect(NodeId("node-1"));
  NodeOptions options;
  options.id = NodeId("node-1");
  options.initial_members = {{NodeId("node-1"), "localhost:1"}};
  options.data_dir = dir;
  options.shard_count = 2;
  options.transport = transport.get();
  auto node = Node::open(options);
  if (!node.is_ok()) return false;
  KvReply put;
  put.status = Status::unavailable("not tried");
  for (int i = 0; i < 100 && !put.status.is_ok(); ++i) put = (*node)->put("k", "v").get();
  const KvReply got = (*node)->get("k").get();
  return put.status.is_ok() && got.status.is_ok() && got.value == "v";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace nodenomad;
  StorageOptions options;  // no directory: an in-memory engine
  auto engine = StorageEngine::open(options);
  if (!engine.is_ok()) {
    std::fprintf(stderr, "consumer: %s\n", engine.status().to_string().c_str());
    return 1;
  }
  auto written = (*engine)->set("key", "value");
  auto read = (*engine)->get("key");
  ConsistentHashRing ring;
  const bool ring_ok = ring.add_node(NodeId("node-1")).is_ok() && ring.get_node_for_key("key").is_ok();
  MemoryLogStore log;
  if (!written.ok() || !read.is_ok() || read->value != "value" || !ring_ok || !log.sync().is_ok()) {
    std::fprintf(stderr, "consumer: installed NodeNomad does not work\n");
    return 1;
  }
  const std::string dir = argc > 1 ? argv[1] : "consumer-node-data";
  if (!node_works(dir)) {
    std::fprintf(stderr, "consumer: a one-node cluster did not serve a write and a read\n");
    return 1;
  }
  std::printf("consumer: linked the installed NodeNomad (storage, ring, log store, node)\n");
  return 0;
}
