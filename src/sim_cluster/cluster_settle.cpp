// The end of a whole-node simulation: healing, coming to rest, and the
// checks that only hold at rest (cluster_sim_impl.hpp).
#include <fmt/format.h>
#include <xxhash.h>

#include <map>
#include <optional>

#include "nodenomad/sharding/key_to_shard.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "sim_cluster/cluster_sim_impl.hpp"

namespace nodenomad::sim_cluster {
namespace {

// How long the digests of a cluster at rest may take to come back.
constexpr SimTime kDigestWaitUs = 10'000'000;

using GroupTable = std::map<GroupId, NodeGroupStatus>;

}  // namespace

void ClusterSim::heal() {
  faulty_ = false;
  trace_.note(scheduler_.now(), "heal: the network mends, every node restarts, clients finish");
  network_->heal();
  network_->calm_down();
  clients_->stop_issuing();
  driver_->settle();
  for (std::uint32_t i = 0; i < nodes_->count() && failure_.empty(); ++i) {
    if (nodes_->born(i) && !nodes_->up(i)) restart(i);
  }
}

// The newest view any live node holds decides who the members are: a
// drained member may have left the cluster, and its own view stays where it
// was when it left. Precondition: a node is up.
std::shared_ptr<const ClusterMetadata> ClusterSim::newest_view() {
  std::shared_ptr<const ClusterMetadata> newest;
  for (std::uint32_t i = 0; i < nodes_->count(); ++i) {
    if (!nodes_->up(i)) continue;
    std::shared_ptr<const ClusterMetadata> view = nodes_->node(i)->metadata();
    if (!newest || view->config_epoch() > newest->config_epoch() ||
        (view->config_epoch() == newest->config_epoch() &&
         view->record_revision() > newest->record_revision())) {
      newest = view;
    }
  }
  return newest;
}

// At rest: every node up and a member, nothing in flight, every node holding
// the same metadata with no operation running, every group caught up.
bool ClusterSim::at_rest(std::string& why) {
  for (std::uint32_t i = 0; i < nodes_->count(); ++i) {
    if (!nodes_->up(i)) {
      why = nodes_->id(i).str() + " is down";
      return false;
    }
  }
  if (!driver_->joins_done()) {
    why = "a joiner has not been added yet";
    return false;
  }
  if (!clients_->idle()) {
    why = "a client operation is in flight";
    return false;
  }
  const std::shared_ptr<const ClusterMetadata> newest = newest_view();
  if (!newest->initialized()) {
    why = "the metadata is not initialized";
    return false;
  }
  for (const Member& m : newest->members()) {
    const int i = nodes_->index_of(m.id);
    if (i < 0) {
      why = "an unknown member " + m.id.str();
      return false;
    }
    const std::shared_ptr<const ClusterMetadata> view = nodes_->node(i)->metadata();
    if (!(*view == *newest)) {
      why = fmt::format("{}'s metadata (config epoch {}, record revision {}) is behind (config "
                        "epoch {}, record revision {})",
                        m.id.str(), view->config_epoch(), view->record_revision(),
                        newest->config_epoch(), newest->record_revision());
      return false;
    }
  }
  for (const auto& [key, rec] : newest->records_in(node::kMigrationNamespace)) {
    Result<node::MigrationRecord> r = node::decode_migration_record(rec.value);
    if (r.is_ok() && !migration_stage_terminal(r->stage)) {
      why = fmt::format("operation {} is at {}{}{}", key, migration_stage_name(r->stage),
                        r->rolling_back ? " (rolling back)" : "", r->paused ? " (paused)" : "");
      return false;
    }
  }
  return shards_at_rest(*newest, why);
}

bool ClusterSim::shards_at_rest(const ClusterMetadata& view, std::string& why) {
  std::vector<GroupTable> tables(nodes_->count());
  for (std::uint32_t i = 0; i < nodes_->count(); ++i) {
    std::vector<NodeGroupStatus> groups;
    scheduler_.as_owner(i, [&] { groups = nodes_->node(i)->group_status(); });
    for (const NodeGroupStatus& g : groups) tables[i][g.group] = g;
  }
  // The metadata group on every member, then each shard's group on its voters.
  auto caught_up = [&](GroupId group, const std::vector<std::uint32_t>& holders) {
    std::optional<LogIndex> applied;
    bool same = true;
    bool led = false;
    std::string states;
    for (std::uint32_t i : holders) {
      auto it = tables[i].find(group);
      if (it == tables[i].end()) {
        why = fmt::format("{} holds a voter's place in group {} but hosts no replica of it",
                          nodes_->id(i).str(), group.value());
        return false;
      }
      const NodeGroupStatus& g = it->second;
      same &= g.commit == g.applied && (!applied || *applied == g.applied);
      applied = g.applied;
      led |= g.role == RaftRole::kLeader;
      states += fmt::format(" {} {} term {} commit {} applied {} leader {};", nodes_->id(i).str(),
                            raft_role_name(g.role), g.term.value(), g.commit.value(),
                            g.applied.value(), g.leader.empty() ? "-" : g.leader.str());
    }
    if (!same || !led) {
      why = fmt::format("group {} is not caught up{}:{}", group.value(),
                        led ? "" : " (no leader among its voters)", states);
    }
    return same && led;
  };
  std::vector<std::uint32_t> members;
  for (const Member& m : view.members()) members.push_back(static_cast<std::uint32_t>(nodes_->index_of(m.id)));
  if (!caught_up(kMetadataGroup, members)) return false;
  for (std::uint32_t s = 0; s < view.shard_count(); ++s) {
    std::vector<std::uint32_t> voters;
    for (const NodeId& v : view.shard_map().placement(ShardId(s)).replicas) {
      const int i = nodes_->index_of(v);
      if (i < 0) {
        why = fmt::format("shard {} names an unknown voter {}", s, v.str());
        return false;
      }
      voters.push_back(static_cast<std::uint32_t>(i));
    }
    if (!caught_up(group_of_shard(ShardId(s)), voters)) return false;
  }
  return true;
}

// Every voter of every shard holds the same state: in particular a migrated
// shard's digest equals its source's, which the other voters still share.
// False, saying where, while some differ (a replica may still be catching
// up: the caller asks again until settle_ms runs out).
bool ClusterSim::digests_agree(std::string& why) {
  const std::shared_ptr<const ClusterMetadata> view = newest_view();
  struct Asked {
    ShardId shard;
    std::uint32_t node = 0;
    std::optional<Result<ShardDigest>> answer;
  };
  auto asked = std::make_shared<std::vector<Asked>>();
  for (std::uint32_t s = 0; s < view->shard_count(); ++s) {
    for (const NodeId& v : view->shard_map().placement(ShardId(s)).replicas) {
      asked->push_back(Asked{ShardId(s), static_cast<std::uint32_t>(nodes_->index_of(v)), {}});
    }
  }
  for (std::size_t k = 0; k < asked->size(); ++k) {
    Asked& a = (*asked)[k];
    nodes_->node(a.node)->shard_digest(a.shard, [asked, k](Result<ShardDigest> d) {
      (*asked)[k].answer = std::move(d);
    });
  }
  const SimTime deadline = scheduler_.now() + kDigestWaitUs;
  auto all_in = [&] {
    for (const Asked& a : *asked) {
      if (!a.answer) return false;
    }
    return true;
  };
  while (failure_.empty() && !all_in()) {
    if (scheduler_.now() > deadline) {
      fail("the replicas' digests did not come back");
      return false;
    }
    step();
  }
  if (!failure_.empty()) return false;
  std::map<std::uint32_t, const Asked*> reference;
  std::uint64_t compared = 0;
  for (const Asked& a : *asked) {
    const std::string who = fmt::format("{}'s replica of shard {}", nodes_->id(a.node).str(),
                                        a.shard.value());
    if (!a.answer->is_ok()) {
      why = who + " has no digest: " + a.answer->status().to_string();
      return false;
    }
    const ShardDigest& d = a.answer->value();
    trace_.hash_u64(d.root());
    auto [it, first] = reference.emplace(a.shard.value(), &a);
    if (first) {
      ++compared;
      continue;
    }
    const ShardDigest& ref = it->second->answer->value();
    if (d.root() != ref.root()) {
      why = fmt::format(
          "{} differs from {}'s: root {:016x} ({} keys, index {}) vs {:016x} ({} keys, index {}), "
          "{} buckets differ; {}",
          who, nodes_->id(it->second->node).str(), d.root(), d.keys, d.index.value(), ref.root(),
          ref.keys, ref.index.value(), d.differing_buckets(ref).size(),
          stale_reads(a.shard, {a.node, it->second->node}));
      trace_.note(scheduler_.now(), "digests differ: " + why);
      return false;
    }
  }
  stats_.shards_compared = compared;
  trace_.note(scheduler_.now(), fmt::format("digests: {} shards, every voter agrees", compared));
  return true;
}

// What each of `holders` answers a stale (local) read of every client key of
// `shard`: the keys whose answers differ, for a digest mismatch's report.
std::string ClusterSim::stale_reads(ShardId shard, const std::vector<std::uint32_t>& holders) {
  struct Read {
    std::string key;
    std::uint32_t node = 0;
    std::optional<KvReply> reply;
  };
  auto reads = std::make_shared<std::vector<Read>>();
  for (std::uint32_t k = 0; k < scenario_.key_count; ++k) {
    const std::string key = fmt::format("k{}", k);
    if (shard_for_key(key, scenario_.shard_count) != shard) continue;
    for (std::uint32_t n : holders) reads->push_back(Read{key, n, std::nullopt});
  }
  GetOptions stale;
  stale.consistency = ReadConsistency::kStale;
  for (std::size_t r = 0; r < reads->size(); ++r) {
    nodes_->node((*reads)[r].node)->get((*reads)[r].key, stale, [reads, r](KvReply reply) {
      (*reads)[r].reply = std::move(reply);
    });
  }
  const SimTime deadline = scheduler_.now() + kDigestWaitUs;
  auto all_in = [&] {
    for (const Read& r : *reads) {
      if (!r.reply) return false;
    }
    return true;
  };
  while (!all_in() && scheduler_.now() < deadline && failure_.empty()) step();
  std::map<std::string, std::vector<std::string>> answers;
  for (const Read& r : *reads) {
    std::string a = !r.reply ? "no answer"
                    : r.reply->status.is_ok()
                        ? fmt::format("{}@v{}", testing::printable_bytes(r.reply->value),
                                      r.reply->version)
                        : r.reply->status.to_string();
    answers[r.key].push_back(nodes_->id(r.node).str() + ": " + a);
  }
  std::string out = "stale reads:";
  for (const auto& [key, list] : answers) {
    bool same = true;
    for (const std::string& a : list) {
      same &= a.substr(a.find(':')) == list.front().substr(list.front().find(':'));
    }
    if (same) continue;
    out += " " + key + " {";
    for (const std::string& a : list) out += " " + a + ";";
    out += " }";
  }
  return out;
}

void ClusterSim::check_history() {
  if (!options_.check_linearizability) return;
  testing::CheckOptions check;
  check.max_states_per_key = options_.checker_max_states_per_key;
  Result<testing::CheckResult> checked = testing::check_linearizability(clients_->history(), check);
  if (!checked.is_ok()) return fail("the history is malformed: " + checked.status().to_string());
  verdict_ = checked->verdict;
  stats_.checker_states = checked->states_explored;
  if (verdict_ == testing::Verdict::kIllegal) fail("not linearizable: " + checked->explanation);
}

void ClusterSim::fill_result(testing::ClusterSimResult& r) {
  r.seed = options_.seed;
  r.node_count = nodes_ ? nodes_->count() : 0;
  r.shard_count = scenario_.shard_count;
  r.passed = failure_.empty();
  r.failure = failure_;
  r.verdict = verdict_;
  const std::uint64_t order = scheduler_.order_hash();
  r.trace_hash = XXH3_64bits_withSeed(&order, sizeof order, trace_.hash());
  r.trace_tail = trace_.tail();
  r.fault_summary = profile_.describe();
  r.scenario_summary = describe_scenario(scenario_);
  if (driver_) r.kills_fired = driver_->kills_fired();
  testing::ClusterSimStats& s = stats_;
  s.steps = scheduler_.steps();
  s.simulated_ms = scheduler_.now() / 1000;
  if (network_) {
    s.messages_sent = network_->stats().sent;
    s.messages_delivered = network_->stats().delivered;
    s.messages_dropped = network_->stats().dropped;
    s.messages_duplicated = network_->stats().duplicated;
  }
  if (nodes_) {
    s.crashes = nodes_->crashes();
    s.divergences = nodes_->divergences();
  }
  if (driver_) s.admin_calls = driver_->admin_calls();
  if (invariants_) {
    s.views_checked = invariants_->views_checked();
    for (const auto& [id, rec] : invariants_->newest()) {
      ++s.migrations;
      s.migrations_done += rec.stage == MigrationStage::kDone ? 1 : 0;
      s.migrations_failed += rec.stage == MigrationStage::kFailed ? 1 : 0;
      s.migrations_cancelled += rec.stage == MigrationStage::kCancelled ? 1 : 0;
      s.verify_mismatches += rec.verify_mismatches;
      s.migrations_done_after_repair +=
          rec.stage == MigrationStage::kDone && rec.verify_mismatches > 0 ? 1 : 0;
    }
  }
  if (clients_) {
    s.ops_ok = clients_->stats().ok;
    s.ops_fail = clients_->stats().fail;
    s.ops_unknown = clients_->stats().unknown;
  }
  r.stats = s;
}

}  // namespace nodenomad::sim_cluster
