// ClusterMetadata's commands: bootstrap, every accept and refuse path with
// its message, the epoch compare-and-set, records, and input validation.
// The encodings and MetadataStateMachine: cluster_metadata_codec_test.cpp.
#include <catch2/catch.hpp>

#include <string>

#include "nodenomad/sharding/cluster_metadata.hpp"
#include "sharding/metadata_test_support.hpp"

namespace nodenomad {
namespace {

using metadata_test::apply_ok;
using metadata_test::bootstrap_command;
using metadata_test::founders;
using metadata_test::logged;
using metadata_test::mentions;
using sharding_test::node_name;

// Applies a command that must be refused with `code` and a message holding
// `text`, and checks that nothing changed.
void refuse(ClusterMetadata& state, const MetadataCommand& command, StatusCode code,
            std::string_view text) {
  const ClusterMetadata before = state;
  const MetadataResult result = state.apply(command);
  INFO(result.status.to_string());
  CHECK(result.status.code() == code);
  CHECK(mentions(result.status, text));
  CHECK(state == before);
}

TEST_CASE("metadata: bootstrap is a pure function of its inputs", "[metadata]") {
  std::vector<Member> members = founders(4);
  Result<ClusterMetadata> a = ClusterMetadata::bootstrap("c1", members, 16, 3);
  std::reverse(members.begin(), members.end());
  Result<ClusterMetadata> b = ClusterMetadata::bootstrap("c1", members, 16, 3);
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  CHECK(*a == *b);
  CHECK(a->cluster_id() == "c1");
  CHECK(a->config_epoch() == 1);
  CHECK(a->members().front().id == node_name(1));
  CHECK(a->shard_map() == ShardMap::initial(sharding_test::node_names(1, 4), 16, 3).value());
  CHECK_FALSE(a->bootstrap_logged());
  CHECK(a->validate().is_ok());
}

TEST_CASE("metadata: bootstrap refuses bad input, naming it", "[metadata]") {
  const auto refuse_bootstrap = [](std::string cluster, std::vector<Member> members,
                                   std::uint32_t shards, std::uint32_t r, std::string_view text) {
    Result<ClusterMetadata> state = ClusterMetadata::bootstrap(cluster, members, shards, r);
    REQUIRE_FALSE(state.is_ok());
    INFO(state.status().to_string());
    CHECK(state.status().code() == StatusCode::kInvalidArgument);
    CHECK(mentions(state.status(), text));
  };
  refuse_bootstrap("", founders(3), 8, 3, "kMaxClusterIdBytes");
  refuse_bootstrap("a b", founders(3), 8, 3, "cluster id");
  refuse_bootstrap("c", {}, 8, 3, "kMaxMembers");
  refuse_bootstrap("c", founders(3), 0, 3, "kMaxShardCount");
  refuse_bootstrap("c", founders(3), 8, 0, "kMaxReplicationFactor");
  std::vector<Member> members = founders(3);
  members[1].id = NodeId("node/2");
  refuse_bootstrap("c", members, 8, 3, "[A-Za-z0-9._-]");
  members = founders(3);
  members[2].address = "no-port";
  refuse_bootstrap("c", members, 8, 3, "host:port");
  members = founders(3);
  members[2].id = members[0].id;
  refuse_bootstrap("c", members, 8, 3, "node-1 is listed twice");
  members = founders(3);
  members[2].address = members[0].address;
  refuse_bootstrap("c", members, 8, 3, "given to two members");
  members = founders(3);
  members[0].state = MemberState::kLeaving;
  refuse_bootstrap("c", members, 8, 3, "not active");
}

TEST_CASE("metadata: ids and addresses", "[metadata]") {
  for (const char* good : {"node-1", "a", "N.o_d-e", "0"}) CHECK(check_node_id(NodeId(good)).is_ok());
  for (const char* bad : {"", "node 1", "node@1", "n/1", "é"}) {
    CHECK(check_node_id(NodeId(bad)).code() == StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(check_node_id(NodeId(std::string(kMaxNodeIdBytes + 1, 'n'))).is_ok());
  CHECK(check_node_id(NodeId(std::string(kMaxNodeIdBytes, 'n'))).is_ok());

  for (const char* good : {"127.0.0.1:3000", "node-1:1", "[::1]:65535", "h.example.com:80"}) {
    INFO(good);
    CHECK(check_member_address(good).is_ok());
  }
  for (const char* bad : {"", ":80", "host", "host:", "host:0", "host:65536", "host:80a",
                          "h st:80", "a@b:80", "a,b:80", "host:123456"}) {
    INFO(bad);
    CHECK(check_member_address(bad).code() == StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(check_member_address(std::string(kMaxMemberAddressBytes, 'h') + ":1").is_ok());
}

TEST_CASE("metadata: nothing but Bootstrap is accepted before the Bootstrap entry", "[metadata]") {
  ClusterMetadata founding = ClusterMetadata::bootstrap(bootstrap_command(3)).value();
  ClusterMetadata joining;
  CHECK(joining.validate().is_ok());
  CHECK_FALSE(joining.initialized());
  for (ClusterMetadata* state : {&founding, &joining}) {
    const MetadataResult result = state->apply(metadata::AddMember{node_name(9), "h:9"});
    CHECK(result.status.code() == StatusCode::kUnavailable);
    // Both replicas must answer the same bytes, whatever they hold.
    CHECK(result.config_epoch == 0);
  }
  // A founding node's own guess is replaced by what the log says.
  apply_ok(founding, bootstrap_command(4));
  apply_ok(joining, bootstrap_command(4));
  CHECK(founding == joining);
  CHECK(founding.bootstrap_logged());
  CHECK(founding.members().size() == 4);
  refuse(founding, bootstrap_command(4), StatusCode::kAlreadyExists, "bootstrapped already");

  ClusterMetadata empty;
  metadata::Bootstrap bad = bootstrap_command(3);
  bad.shard_count = 0;
  refuse(empty, bad, StatusCode::kInvalidArgument, "shard_count 0");
}

TEST_CASE("metadata: AddMember", "[metadata]") {
  ClusterMetadata state = logged(3);
  const MetadataResult added = apply_ok(state, metadata::AddMember{node_name(0), "h:10"});
  CHECK(added.config_epoch == 2);
  CHECK(state.members().front().id == node_name(0));  // kept in id order
  CHECK(state.find_member(node_name(0))->state == MemberState::kActive);

  // A retry of the same command is answered OK and changes nothing.
  const ClusterMetadata before = state;
  CHECK(apply_ok(state, metadata::AddMember{node_name(0), "h:10"}).config_epoch == 2);
  CHECK(state == before);

  refuse(state, metadata::AddMember{node_name(0), "h:11"}, StatusCode::kAlreadyExists,
         "node-0 is already a member at h:10; AddMember asked for h:11");
  refuse(state, metadata::AddMember{node_name(7), "h:10"}, StatusCode::kAlreadyExists,
         "address h:10 belongs to member node-0");
  refuse(state, metadata::AddMember{NodeId("bad id"), "h:12"}, StatusCode::kInvalidArgument,
         "AddMember: node id");
  refuse(state, metadata::AddMember{node_name(7), "nope"}, StatusCode::kInvalidArgument,
         "AddMember node-7: address \"nope\"");
}

TEST_CASE("metadata: RemoveMember only once the node hosts nothing", "[metadata]") {
  ClusterMetadata state = logged(4, 8, 3);
  refuse(state, metadata::RemoveMember{node_name(9)}, StatusCode::kNotFound,
         "node-9 is not a member");
  const std::size_t hosted = state.shard_map().shards_on(node_name(2)).size();
  REQUIRE(hosted > 0);
  refuse(state, metadata::RemoveMember{node_name(2)}, StatusCode::kInvalidArgument,
         fmt::format("node-2 still hosts {} shard replica(s) (shards ", hosted));

  // Move node-2 off every shard (as a drain would), then it may go.
  for (const ShardId shard : state.shard_map().shards_on(node_name(2))) {
    const ShardPlacement& placement = state.shard_map().placement(shard);
    std::vector<NodeId> replicas;
    for (const NodeId& id : sharding_test::node_names(1, 4)) {
      if (id != node_name(2) && replicas.size() < 3) replicas.push_back(id);
    }
    apply_ok(state, metadata::UpdateShardPlacement{shard, placement.epoch, replicas, {}});
  }
  const std::uint64_t epoch = state.config_epoch();
  CHECK(apply_ok(state, metadata::RemoveMember{node_name(2)}).config_epoch == epoch + 1);
  CHECK(state.find_member(node_name(2)) == nullptr);
  CHECK(state.members().size() == 3);
}

TEST_CASE("metadata: SetMemberAddress and SetMemberState", "[metadata]") {
  ClusterMetadata state = logged(3);
  refuse(state, metadata::SetMemberAddress{node_name(9), "h:1"}, StatusCode::kNotFound,
         "node-9 is not a member");
  refuse(state, metadata::SetMemberAddress{node_name(1), "h"}, StatusCode::kInvalidArgument,
         "SetMemberAddress node-1");
  refuse(state, metadata::SetMemberAddress{node_name(1), founders(3)[1].address},
         StatusCode::kAlreadyExists, "belongs to member node-2");
  const ClusterMetadata before = state;
  apply_ok(state, metadata::SetMemberAddress{node_name(1), founders(3)[0].address});
  CHECK(state == before);  // the same address: a no-op
  CHECK(apply_ok(state, metadata::SetMemberAddress{node_name(1), "10.0.0.1:4000"}).config_epoch ==
        2);
  CHECK(state.find_member(node_name(1))->address == "10.0.0.1:4000");

  refuse(state, metadata::SetMemberState{node_name(9), MemberState::kLeaving},
         StatusCode::kNotFound, "node-9");
  refuse(state, metadata::SetMemberState{node_name(1), static_cast<MemberState>(7)},
         StatusCode::kInvalidArgument, "member state 7 is unknown");
  CHECK(apply_ok(state, metadata::SetMemberState{node_name(1), MemberState::kLeaving})
            .config_epoch == 3);
  CHECK(state.find_member(node_name(1))->state == MemberState::kLeaving);
  CHECK(apply_ok(state, metadata::SetMemberState{node_name(1), MemberState::kLeaving})
            .config_epoch == 3);
  CHECK(member_state_name(MemberState::kLeaving) == "leaving");
}

TEST_CASE("metadata: UpdateShardPlacement is a compare-and-set on the epoch", "[metadata]") {
  ClusterMetadata state = logged(3, 4, 2);
  apply_ok(state, metadata::AddMember{node_name(4), "h:4"});
  const ShardId shard(1);
  const std::vector<NodeId> old_replicas = state.shard_map().placement(shard).replicas;

  // Prepare: a learner joins; the epoch moves from 1 to 2.
  std::vector<NodeId> learners{node_name(4)};
  const MetadataResult prepared =
      apply_ok(state, metadata::UpdateShardPlacement{shard, Epoch(1), old_replicas, learners});
  CHECK(prepared.shard_epoch == Epoch(2));
  CHECK(prepared.config_epoch == 3);
  CHECK(state.shard_map().placement(shard).learners == learners);

  // A coordinator that still believes epoch 1 is told both epochs.
  const ClusterMetadata before = state;
  const MetadataResult stale =
      state.apply(metadata::UpdateShardPlacement{shard, Epoch(1), {node_name(4)}, {}});
  CHECK(stale.status.code() == StatusCode::kVersionMismatch);
  CHECK(stale.status.message() == "shard 1 is at epoch 2, but the update expected epoch 1");
  CHECK(stale.shard_epoch == Epoch(2));
  CHECK(state == before);

  refuse(state, metadata::UpdateShardPlacement{ShardId(4), Epoch(1), {node_name(1)}, {}},
         StatusCode::kInvalidArgument, "shard 4 does not exist; the cluster has 4 shards (0 to 3)");
  refuse(state, metadata::UpdateShardPlacement{shard, Epoch(2), {}, {}},
         StatusCode::kInvalidArgument, "at least one replica");
  refuse(state, metadata::UpdateShardPlacement{shard, Epoch(2), {node_name(1), node_name(1)}, {}},
         StatusCode::kInvalidArgument, "node-1 appears twice");
  refuse(state, metadata::UpdateShardPlacement{shard, Epoch(2), {node_name(8)}, {}},
         StatusCode::kInvalidArgument, "node-8 is not a member of the cluster");

  // Update: the learner becomes a voter in place of old_replicas[0].
  std::vector<NodeId> promoted{old_replicas[1], node_name(4)};
  CHECK(apply_ok(state, metadata::UpdateShardPlacement{shard, Epoch(2), promoted, {}}).shard_epoch ==
        Epoch(3));
  CHECK(state.shard_map().placement(shard).replicas == promoted);
  CHECK(state.shard_map().placement(ShardId(0)).epoch == Epoch(1));  // others untouched
}

TEST_CASE("metadata: a leaving member keeps its replicas but gets no new one", "[metadata]") {
  ClusterMetadata state = logged(4, 4, 2);
  const ShardPlacement placement = state.shard_map().placement(ShardId(0));
  const NodeId& hosting = placement.replicas[0];
  NodeId other;
  for (const Member& member : state.members()) {
    if (!placement.hosts(member.id)) other = member.id;
  }
  apply_ok(state, metadata::SetMemberState{hosting, MemberState::kLeaving});
  apply_ok(state, metadata::SetMemberState{other, MemberState::kLeaving});
  refuse(state,
         metadata::UpdateShardPlacement{ShardId(0), Epoch(1), placement.replicas, {other}},
         StatusCode::kInvalidArgument,
         fmt::format("node {} is leaving and may not receive a new replica", other.str()));
  // Demoting the leaving node to a learner while it is moved off is fine.
  apply_ok(state, metadata::UpdateShardPlacement{ShardId(0), Epoch(1), {placement.replicas[1]},
                                                 {hosting}});
}

TEST_CASE("metadata: records with versions that are never reused", "[metadata]") {
  ClusterMetadata state = logged(3);
  const std::uint64_t config_epoch = state.config_epoch();
  const MetadataResult created =
      apply_ok(state, metadata::PutRecord{"migration", "op-1", "prepare", std::uint64_t{0}});
  CHECK(created.record_version == 1);
  CHECK(state.config_epoch() == config_epoch);  // records are not configuration
  refuse(state, metadata::PutRecord{"migration", "op-1", "again", std::uint64_t{0}},
         StatusCode::kVersionMismatch,
         "record migration/op-1 is at version 1 (0 = absent), but the write expected version 0");
  CHECK(apply_ok(state, metadata::PutRecord{"migration", "op-1", "transfer", std::uint64_t{1}})
            .record_version == 2);
  CHECK(apply_ok(state, metadata::PutRecord{"migration", "op-2", "x", std::nullopt})
            .record_version == 3);
  apply_ok(state, metadata::PutRecord{"other", "op-1", "y", std::nullopt});
  CHECK(state.find_record("migration", "op-1")->value == "transfer");
  CHECK(state.find_record("migration", "op-9") == nullptr);
  const auto listed = state.records_in("migration");
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].first == "op-1");
  CHECK(listed[1].second.value == "x");

  refuse(state, metadata::DeleteRecord{"migration", "op-1", std::uint64_t{1}},
         StatusCode::kVersionMismatch, "is at version 2, but the delete expected version 1");
  refuse(state, metadata::DeleteRecord{"migration", "nope", std::nullopt}, StatusCode::kNotFound,
         "record migration/nope does not exist");
  CHECK(apply_ok(state, metadata::DeleteRecord{"migration", "op-1", std::uint64_t{2}})
            .record_version == 0);
  // Re-created: a fresh version, so an old compare-and-set cannot match it.
  CHECK(apply_ok(state, metadata::PutRecord{"migration", "op-1", "again", std::uint64_t{0}})
            .record_version == 5);

  refuse(state, metadata::PutRecord{"", "k", "v", std::nullopt}, StatusCode::kInvalidArgument,
         "kMaxRecordNamespaceBytes");
  refuse(state, metadata::PutRecord{"ns", std::string(kMaxRecordKeyBytes + 1, 'k'), "v",
                                    std::nullopt},
         StatusCode::kInvalidArgument, "kMaxRecordKeyBytes");
  refuse(state, metadata::PutRecord{"ns", "k", std::string(kMaxRecordValueBytes + 1, 'v'),
                                    std::nullopt},
         StatusCode::kInvalidArgument, "kMaxRecordValueBytes");
  refuse(state, metadata::DeleteRecord{"ns", "", std::nullopt}, StatusCode::kInvalidArgument,
         "DeleteRecord: record key of 0 bytes");
}

TEST_CASE("metadata: record count and size limits", "[metadata]") {
  ClusterMetadata state = logged(1, 1, 1);
  const std::string value(kMaxRecordValueBytes, 'v');
  std::uint64_t stored = 0;
  for (int i = 0;; ++i) {
    const metadata::PutRecord put{"big", fmt::format("{:04}", i), value, std::nullopt};
    if (stored + 3 + 4 + value.size() > kMaxRecordTotalBytes) {
      refuse(state, put, StatusCode::kInvalidArgument, "kMaxRecordTotalBytes");
      break;
    }
    apply_ok(state, put);
    stored += 3 + 4 + value.size();
  }
  // Replacing a record with a smaller value still fits.
  apply_ok(state, metadata::PutRecord{"big", "0000", "small", std::nullopt});

  ClusterMetadata many = logged(1, 1, 1);
  for (std::uint32_t i = 0; i < kMaxRecordCount; ++i) {
    REQUIRE(many.apply(metadata::PutRecord{"n", std::to_string(i), {}, std::nullopt}).ok());
  }
  refuse(many, metadata::PutRecord{"n", "one-more", {}, std::nullopt},
         StatusCode::kInvalidArgument, "kMaxRecordCount");
  apply_ok(many, metadata::PutRecord{"n", "0", "overwrite is fine", std::nullopt});
  CHECK(many.validate().is_ok());
}

}  // namespace
}  // namespace nodenomad
