// Helpers shared by the metadata tests: founding members, a logged
// bootstrap, and a seeded generator of metadata commands (valid and not)
// for the round-trip and determinism tests.
#pragma once

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <string>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"
#include "sharding/sharding_test_support.hpp"

namespace nodenomad::metadata_test {

using sharding_test::node_name;

inline bool mentions(const Status& status, std::string_view text) {
  return status.message().find(text) != std::string_view::npos;
}

// node-1 .. node-n at 127.0.0.1:3001 .. 3000+n.
inline std::vector<Member> founders(int n) {
  std::vector<Member> members;
  for (int i = 1; i <= n; ++i) {
    members.push_back(Member{node_name(i), fmt::format("127.0.0.1:{}", 3000 + i)});
  }
  return members;
}

inline metadata::Bootstrap bootstrap_command(int nodes, std::uint32_t shards = 8,
                                             std::uint32_t r = 3) {
  return metadata::Bootstrap{"test-cluster", founders(nodes), shards, r};
}

inline MetadataResult apply_ok(ClusterMetadata& state, const MetadataCommand& command) {
  MetadataResult result = state.apply(command);
  INFO(result.status.to_string());
  REQUIRE(result.ok());
  return result;
}

// A state whose Bootstrap entry was applied, as every replica holds it
// once the log's first command is in.
inline ClusterMetadata logged(int nodes, std::uint32_t shards = 8, std::uint32_t r = 3) {
  ClusterMetadata state;
  apply_ok(state, bootstrap_command(nodes, shards, r));
  return state;
}

inline std::string random_bytes(Rng& rng, std::size_t max_size) {
  std::string out(rng.uniform(max_size + 1), '\0');
  for (char& c : out) c = static_cast<char>(rng.uniform(256));
  return out;
}

// Ids node-0 .. node-7: some members, some not, so refusals happen too.
inline NodeId random_node(Rng& rng) { return node_name(static_cast<int>(rng.uniform(8))); }

inline std::vector<NodeId> random_nodes(Rng& rng, std::size_t max_count) {
  std::vector<NodeId> out(rng.uniform(max_count + 1));
  for (NodeId& id : out) id = random_node(rng);
  return out;
}

inline std::optional<std::uint64_t> random_if_version(Rng& rng, const ClusterMetadata& state,
                                                      const std::string& ns,
                                                      const std::string& key) {
  switch (rng.uniform(4)) {
    case 0: return std::nullopt;
    case 1: return std::uint64_t{0};
    case 2: {
      const MetadataRecord* record = state.find_record(ns, key);
      return record == nullptr ? 0 : record->version;
    }
    default: return rng.uniform(20);
  }
}

// One command, biased towards ones `state` accepts (current epochs, members).
inline MetadataCommand random_command(Rng& rng, const ClusterMetadata& state) {
  const std::string address = fmt::format("10.0.0.{}:3000", rng.uniform(8));
  switch (rng.uniform(9)) {
    case 0:
      return metadata::Bootstrap{"c" + std::to_string(rng.uniform(3)), founders(1 + rng.uniform(5)),
                                 static_cast<std::uint32_t>(rng.uniform(20)),
                                 static_cast<std::uint32_t>(rng.uniform(4))};
    case 1: return metadata::AddMember{random_node(rng), address};
    case 2: return metadata::RemoveMember{random_node(rng)};
    case 3: return metadata::SetMemberAddress{random_node(rng), address};
    case 4:
      return metadata::SetMemberState{random_node(rng), rng.chance(0.5) ? MemberState::kActive
                                                                      : MemberState::kLeaving};
    case 5:
    case 6: {
      const std::uint32_t shards = std::max<std::uint32_t>(state.shard_count(), 1);
      const ShardId shard(static_cast<std::uint32_t>(rng.uniform(shards + 1)));
      Epoch expected(rng.uniform(4));
      if (state.shard_map().has_shard(shard) && rng.chance(0.8)) {
        expected = state.shard_map().placement(shard).epoch;
      }
      return metadata::UpdateShardPlacement{shard, expected, random_nodes(rng, 4),
                                            random_nodes(rng, 2)};
    }
    case 7: {
      std::string ns = rng.chance(0.5) ? "migration" : "ops";
      std::string key = "k" + std::to_string(rng.uniform(6));
      std::optional<std::uint64_t> if_version = random_if_version(rng, state, ns, key);
      return metadata::PutRecord{std::move(ns), std::move(key), random_bytes(rng, 24), if_version};
    }
    default: {
      std::string ns = rng.chance(0.5) ? "migration" : "ops";
      std::string key = "k" + std::to_string(rng.uniform(6));
      std::optional<std::uint64_t> if_version = random_if_version(rng, state, ns, key);
      return metadata::DeleteRecord{std::move(ns), std::move(key), if_version};
    }
  }
}

}  // namespace nodenomad::metadata_test
