// ring_bench: lookup cost and balance of ConsistentHashRing, as JSON lines.
//
//   ring_bench            full run (about ten seconds)
//   ring_bench --quick    CI smoke run (well under a second of measuring)
//
// Keys are random 16-byte strings generated before timing from a fixed seed,
// so every run measures the same work. Each figure is the median of several
// repetitions; a checksum of the answers is printed so the compiler cannot
// drop the lookups.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/sharding/key_to_shard.hpp"

namespace {

using nodenomad::ConsistentHashRing;
using nodenomad::NodeId;

constexpr std::uint64_t kKeySeed = 0x5eed'0001;
constexpr std::size_t kKeySizeBytes = 16;
// 64 Ki keys (1 MiB): more than the branch predictor can learn, small
// enough that key bytes are not what is measured.
constexpr std::size_t kKeyCount = std::size_t{1} << 16;

struct BenchConfig {
  std::size_t lookup_iterations = 4'000'000;
  std::size_t replica_iterations = 2'000'000;
  int repetitions = 5;
};

// All keys in one buffer; key i is bytes [i * 16, i * 16 + 16).
class KeySet {
 public:
  KeySet(std::uint64_t seed, std::size_t count) : bytes_(count * kKeySizeBytes, '\0') {
    nodenomad::Rng rng(seed);
    for (std::size_t offset = 0; offset < bytes_.size(); offset += 8) {
      const std::uint64_t bits = rng.next_u64();
      std::memcpy(bytes_.data() + offset, &bits, 8);
    }
  }
  std::size_t size() const { return bytes_.size() / kKeySizeBytes; }
  std::string_view operator[](std::size_t i) const {
    return {bytes_.data() + i * kKeySizeBytes, kKeySizeBytes};
  }

 private:
  std::string bytes_;
};

ConsistentHashRing make_ring(int node_count) {
  ConsistentHashRing ring;
  for (int i = 1; i <= node_count; ++i) {
    const nodenomad::Status status = ring.add_node(NodeId(fmt::format("node-{}", i)));
    if (!status.is_ok()) {
      fmt::print(stderr, "ring_bench: {}\n", status.to_string());
      std::exit(1);
    }
  }
  return ring;
}

// How the next call's key is chosen. kIndependent measures throughput: the
// CPU may overlap consecutive lookups. kDependent picks each key from the
// previous answer, so calls run one after another and ns/op is latency.
enum class Chain { kIndependent, kDependent };

// Runs `body(key)` `iterations` times over the key set, `repetitions` times;
// returns the median nanoseconds per call. `body` returns a value folded
// into `checksum`.
template <Chain kChain, typename Body>
double median_ns_per_op(const KeySet& keys, std::size_t iterations, int repetitions,
                        std::uint64_t& checksum, Body body) {
  std::vector<double> samples;
  const std::size_t mask = keys.size() - 1;  // keys.size() is a power of two
  for (int rep = 0; rep < repetitions; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < iterations; ++i) {
      const std::size_t index = kChain == Chain::kDependent ? (i + (sum & 1)) & mask : i & mask;
      sum += body(keys[index]);
    }
    const auto stop = std::chrono::steady_clock::now();
    checksum += sum;
    const double elapsed_ns = std::chrono::duration<double, std::nano>(stop - start).count();
    samples.push_back(elapsed_ns / static_cast<double>(iterations));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

void bench_lookups(const BenchConfig& config, const KeySet& keys, int node_count) {
  const ConsistentHashRing ring = make_ring(node_count);
  // The address and size of the answer depend on the lookup, so the call
  // cannot be elided.
  const auto lookup = [&](std::string_view key) {
    const NodeId& owner = ring.get_node_for_key(key)->get();
    return reinterpret_cast<std::uintptr_t>(&owner) + owner.str().size();
  };
  std::uint64_t checksum = 0;
  const double lookup_ns = median_ns_per_op<Chain::kIndependent>(
      keys, config.lookup_iterations, config.repetitions, checksum, lookup);
  fmt::print(
      "{{\"bench\":\"ring_get_node_for_key\",\"nodes\":{},\"vnodes\":{},\"tokens\":{},"
      "\"iterations\":{},\"ns_per_op\":{:.1f},\"checksum\":{}}}\n",
      node_count, ring.virtual_nodes_per_node(), ring.token_count(), config.lookup_iterations,
      lookup_ns, checksum);

  checksum = 0;
  const double latency_ns = median_ns_per_op<Chain::kDependent>(
      keys, config.lookup_iterations, config.repetitions, checksum, lookup);
  fmt::print(
      "{{\"bench\":\"ring_get_node_for_key_latency\",\"nodes\":{},\"vnodes\":{},"
      "\"iterations\":{},\"ns_per_op\":{:.1f},\"checksum\":{}}}\n",
      node_count, ring.virtual_nodes_per_node(), config.lookup_iterations, latency_ns, checksum);

  checksum = 0;
  const double replica_ns = median_ns_per_op<Chain::kIndependent>(
      keys, config.replica_iterations, config.repetitions, checksum, [&](std::string_view key) {
        const std::vector<NodeId> replicas = ring.get_replica_nodes(key, 3);
        return replicas.size() + replicas.back().str().size();
      });
  fmt::print(
      "{{\"bench\":\"ring_get_replica_nodes\",\"nodes\":{},\"vnodes\":{},\"replicas\":3,"
      "\"iterations\":{},\"ns_per_op\":{:.1f},\"checksum\":{}}}\n",
      node_count, ring.virtual_nodes_per_node(), config.replica_iterations, replica_ns, checksum);

  const nodenomad::RingBalance balance = ring.balance();
  fmt::print(
      "{{\"bench\":\"ring_balance\",\"nodes\":{},\"vnodes\":{},\"max_over_mean\":{:.4f},"
      "\"min_over_mean\":{:.4f}}}\n",
      node_count, ring.virtual_nodes_per_node(), balance.max_over_mean,
      balance.min_fraction / balance.mean_fraction);
}

void bench_shard_for_key(const BenchConfig& config, const KeySet& keys) {
  constexpr std::uint32_t kShardCount = 64;
  std::uint64_t checksum = 0;
  const double shard_ns = median_ns_per_op<Chain::kIndependent>(
      keys, config.lookup_iterations, config.repetitions, checksum,
      [](std::string_view key) { return nodenomad::shard_for_key(key, kShardCount).value(); });
  fmt::print(
      "{{\"bench\":\"shard_for_key\",\"shards\":{},\"iterations\":{},\"ns_per_op\":{:.1f},"
      "\"checksum\":{}}}\n",
      kShardCount, config.lookup_iterations, shard_ns, checksum);
}

void bench_add_node(int node_count) {
  ConsistentHashRing ring = make_ring(node_count);
  const auto start = std::chrono::steady_clock::now();
  const nodenomad::Status status = ring.add_node(NodeId("node-new"));
  const auto stop = std::chrono::steady_clock::now();
  const double elapsed_us = std::chrono::duration<double, std::micro>(stop - start).count();
  fmt::print("{{\"bench\":\"ring_add_node\",\"nodes_before\":{},\"vnodes\":{},\"us\":{:.1f},"
             "\"ok\":{}}}\n",
             node_count, ring.virtual_nodes_per_node(), elapsed_us, status.is_ok());
}

}  // namespace

int main(int argc, char** argv) {
  BenchConfig config;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      config = BenchConfig{.lookup_iterations = 1'000'000,
                           .replica_iterations = 200'000,
                           .repetitions = 3};
    } else {
      fmt::print(stderr, "ring_bench: unknown argument '{}'; accepted: --quick\n", arg);
      return 2;
    }
  }
  const KeySet keys(kKeySeed, kKeyCount);
  bench_lookups(config, keys, 100);
  bench_lookups(config, keys, 10);
  bench_shard_for_key(config, keys);
  bench_add_node(100);
  return 0;
}
