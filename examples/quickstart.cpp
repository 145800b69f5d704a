// Quickstart: what a host application does with NodeNomad's storage engine
// and hash ring today (the main job until the cluster exists).
//
//   quickstart [data-dir]
//
// 1. Opens a durable StorageEngine (WAL with group commit) in data-dir.
// 2. Writes keys, shows versions, a compare-and-set that loses, a TTL.
// 3. Closes and reopens it: everything acknowledged comes back from the WAL.
// 4. Takes a snapshot (the WAL is compacted behind it).
// 5. Places keys on a ConsistentHashRing of 5 nodes, then adds a 6th and
//    shows that only about 1/6 of the keys move, all onto the new node.
#include <chrono>
#include <cstdio>
#include <string>

#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/sharding/key_to_shard.hpp"
#include "nodenomad/storage/storage_engine.hpp"

using namespace nodenomad;
using namespace std::chrono_literals;

namespace {

int fail(const char* what, const Status& status) {
  std::fprintf(stderr, "quickstart: %s: %s\n", what, status.to_string().c_str());
  return 1;
}

Result<std::unique_ptr<StorageEngine>> open_engine(const std::string& dir) {
  StorageOptions options;
  options.dir = dir;
  options.sync_policy = SyncPolicy::kGroupCommit;
  return StorageEngine::open(options);
}

// Keys are binary-safe: show non-printable bytes as \xNN.
std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

void show(const StorageEngine& engine, std::string_view key) {
  auto read = engine.get(key);
  const std::string shown = printable(key);
  if (!read.is_ok()) {
    std::printf("  get %-14s -> %s\n", shown.c_str(), read.status().to_string().c_str());
    return;
  }
  std::printf("  get %-14s -> \"%s\" (version %llu%s)\n", shown.c_str(),
              printable(read->value).c_str(), static_cast<unsigned long long>(read->version),
              read->expiry ? ", expires" : "");
}

int storage_demo(const std::string& dir) {
  std::printf("== StorageEngine in %s\n", dir.c_str());
  auto opened = open_engine(dir);
  if (!opened.is_ok()) return fail("open", opened.status());
  auto engine = std::move(opened).value();
  const std::uint64_t before = engine->stats().keys;
  std::printf("  opened with %llu keys already stored\n", static_cast<unsigned long long>(before));

  auto put = engine->set("user:42", "Ada Lovelace");
  if (!put.ok()) return fail("set", put.status);
  std::printf("  set user:42 -> version %llu\n", static_cast<unsigned long long>(put.version));
  auto cas_lost = engine->compare_and_set("user:42", "Grace Hopper", put.version - 1);
  std::printf("  compare_and_set(user:42, if_version=%llu) -> %s, current_version %llu\n",
              static_cast<unsigned long long>(put.version - 1),
              cas_lost.status.to_string().c_str(),
              static_cast<unsigned long long>(cas_lost.current_version));
  auto cas_won = engine->compare_and_set("user:42", "Ada King", put.version);
  std::printf("  compare_and_set(user:42, if_version=%llu) -> %s, version %llu\n",
              static_cast<unsigned long long>(put.version), cas_won.status.to_string().c_str(),
              static_cast<unsigned long long>(cas_won.version));

  WriteOptions ttl;
  ttl.expiry = SystemClock::instance().wall_now() + 60s;
  if (auto r = engine->set("session:7", "token-abc", ttl); !r.ok()) return fail("set ttl", r.status);
  if (auto r = engine->set(std::string("bin\0key", 7), "binary-safe"); !r.ok()) {
    return fail("set binary", r.status);
  }
  auto too_big = engine->set(std::string(2000, 'k'), "v");
  std::printf("  set of a 2000-byte key -> %s\n", too_big.status.to_string().c_str());
  show(*engine, "user:42");
  show(*engine, "session:7");
  show(*engine, "missing");
  engine.reset();

  std::printf("== reopen: the WAL is replayed\n");
  opened = open_engine(dir);
  if (!opened.is_ok()) return fail("reopen", opened.status());
  engine = std::move(opened).value();
  show(*engine, "user:42");
  show(*engine, std::string("bin\0key", 7));
  if (Status s = engine->snapshot(); !s.is_ok()) return fail("snapshot", s);
  const StorageStats stats = engine->stats();
  std::printf("  snapshot written: %llu keys, %llu bytes; the WAL behind it is %llu bytes\n",
              static_cast<unsigned long long>(stats.keys),
              static_cast<unsigned long long>(stats.bytes),
              static_cast<unsigned long long>(stats.wal_bytes));
  return 0;
}

int ring_demo() {
  std::printf("== ConsistentHashRing: 5 nodes x 256 virtual nodes\n");
  ConsistentHashRing ring;
  for (int i = 1; i <= 5; ++i) {
    if (Status s = ring.add_node(NodeId("node-" + std::to_string(i))); !s.is_ok()) {
      return fail("add_node", s);
    }
  }
  for (const char* key : {"user:42", "session:7", "cart:1001"}) {
    const auto replicas = ring.get_replica_nodes(key, 3);
    std::printf("  %-10s shard %2llu of 64, replicas %s %s %s\n", key,
                static_cast<unsigned long long>(shard_for_key(key, 64).value()),
                replicas[0].str().c_str(), replicas[1].str().c_str(), replicas[2].str().c_str());
  }
  std::printf("  balance: busiest node holds %.3fx the mean\n", ring.balance().max_over_mean);

  constexpr int kKeys = 100000;
  std::vector<NodeId> before;
  before.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) before.push_back(ring.get_node_for_key("key-" + std::to_string(i))->get());
  if (Status s = ring.add_node(NodeId("node-6")); !s.is_ok()) return fail("add_node", s);
  int moved = 0, moved_elsewhere = 0;
  for (int i = 0; i < kKeys; ++i) {
    const NodeId& now = ring.get_node_for_key("key-" + std::to_string(i))->get();
    if (now != before[i]) {
      ++moved;
      moved_elsewhere += now != NodeId("node-6");
    }
  }
  std::printf("  add node-6: %.1f%% of %d keys moved (ideal 1/6 = 16.7%%), %d onto other nodes\n",
              100.0 * moved / kKeys, kKeys, moved_elsewhere);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "nodenomad-quickstart-data";
  if (int rc = storage_demo(dir); rc != 0) return rc;
  return ring_demo();
}
