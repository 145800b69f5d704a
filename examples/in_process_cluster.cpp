// A three-node NodeNomad cluster inside one process, on the in-memory
// transport: the smallest complete host of the library. Each node has its
// own data directory; stop the program and run it again, and the data is
// still there.
//
//   in_process_cluster [DATA_DIR]     (default: ./in-process-data)
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "nodenomad/in_memory_transport.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/node.hpp"

using namespace nodenomad;

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : "in-process-data";
  set_log_level(LogLevel::kWarn);
  InMemoryNetwork network;
  std::vector<NodeMember> members;
  // Addresses mean nothing to the in-memory transport, but members have one.
  for (int i = 1; i <= 3; ++i) {
    members.push_back({NodeId("node-" + std::to_string(i)), "in-process:" + std::to_string(i)});
  }

  std::vector<std::unique_ptr<InMemoryTransport>> transports;
  std::vector<std::unique_ptr<Node>> nodes;
  for (const NodeMember& m : members) {
    transports.push_back(network.connect(m.id));
    NodeOptions options;
    options.id = m.id;
    options.initial_members = members;
    options.data_dir = data + "/" + m.id.str();
    options.shard_count = 16;
    options.transport = transports.back().get();
    Result<std::unique_ptr<Node>> node = Node::open(options);
    if (!node.is_ok()) {
      std::fprintf(stderr, "cannot open %s: %s\n", m.id.str().c_str(),
                   node.status().to_string().c_str());
      return 1;
    }
    nodes.push_back(std::move(*node));
  }

  // Any node takes any request; the first ones wait for shard leaders.
  KvReply put;
  for (int attempt = 0; attempt < 50; ++attempt) {
    put = nodes[0]->put("greeting", "hello from node-1").get();
    if (put.status.is_ok()) break;
  }
  if (!put.status.is_ok()) {
    std::fprintf(stderr, "put failed: %s\n", put.status.to_string().c_str());
    return 1;
  }
  std::printf("put greeting -> version %llu\n", static_cast<unsigned long long>(put.version));
  for (const auto& node : nodes) {
    const KvReply got = node->get("greeting").get();
    std::printf("%s reads greeting = \"%s\" (%s)\n", node->node_id().str().c_str(),
                got.value.c_str(), got.status.to_string().c_str());
  }
  PutOptions cas;
  cas.if_version = put.version;
  const KvReply swapped = nodes[2]->put("greeting", "replaced by node-3", cas).get();
  std::printf("compare-and-set at version %llu: %s\n",
              static_cast<unsigned long long>(put.version), swapped.status.to_string().c_str());
  const KvReply stale = nodes[1]->put("greeting", "too late", cas).get();
  std::printf("the same compare-and-set again: %s\n", stale.status.to_string().c_str());
  // Nodes stop (destructors) before their transports.
  nodes.clear();
  return 0;
}
