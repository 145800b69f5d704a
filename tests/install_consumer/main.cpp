// Built against the installed headers and library only: proves that a host
// project can find_package(NodeNomad) and use its parts.
#include <cstdio>

#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/storage/storage_engine.hpp"

int main() {
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
  std::printf("consumer: linked the installed NodeNomad (storage, ring, log store)\n");
  return 0;
}
