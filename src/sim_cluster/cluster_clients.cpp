#include "sim_cluster/cluster_clients.hpp"

#include <fmt/format.h>

#include "nodenomad/sharding/key_to_shard.hpp"

namespace nodenomad::sim_cluster {
namespace {

// The client's own deadline, beyond the node's request deadline: a node
// always answers by then unless it crashed.
constexpr SimTime kClientMarginUs = 2'000'000;
constexpr std::uint64_t kMaxThinkUs = 40'000;

}  // namespace

ClusterClients::ClusterClients(Scheduler& scheduler, ClusterNodes& nodes,
                               const Scenario& scenario, std::uint32_t count, Rng rng,
                               ClusterTrace& trace, testing::ClusterSimBug bug)
    : scheduler_(scheduler),
      nodes_(nodes),
      scenario_(scenario),
      rng_(rng),
      trace_(trace),
      clients_(count),
      bug_(bug) {}

void ClusterClients::start() {
  for (std::uint32_t c = 0; c < clients_.size(); ++c) schedule_next(c, rng_.uniform_in(0, 200'000));
}

bool ClusterClients::idle() const {
  for (const Client& client : clients_) {
    if (client.busy) return false;
  }
  return true;
}

void ClusterClients::schedule_next(std::uint32_t c, SimTime delay_us) {
  scheduler_.at(scheduler_.now() + delay_us, kNoOwner, [this, c] { issue(c); });
}

std::uint64_t ClusterClients::version_guess(Client& client, const std::string& key) {
  auto it = client.versions.find(key);
  const std::uint64_t seen = it == client.versions.end() ? 0 : it->second;
  const std::uint64_t roll = rng_.uniform(10);
  if (roll < 7) return seen;         // the last version seen (often current)
  if (roll < 9) return seen + 1;     // a guess ahead of it
  return seen > 1 ? seen - 1 : 0;    // a stale one
}

void ClusterClients::issue(std::uint32_t c) {
  Client& client = clients_[c];
  if (client.busy || !issuing_) return;
  std::vector<std::uint32_t> live;
  for (std::uint32_t i = 0; i < nodes_.count(); ++i) {
    if (nodes_.up(i)) live.push_back(i);
  }
  if (live.empty()) return schedule_next(c, 50'000);
  client.via = live[rng_.uniform(live.size())];
  Node& via = *nodes_.node(client.via);
  const std::string key = fmt::format("k{}", rng_.uniform(scenario_.key_count));
  const std::uint64_t roll = rng_.uniform(100);
  testing::KvOp op;
  if (roll < 30) {
    op = testing::KvOp::get(key);
  } else if (roll < 65 || roll >= 90) {
    std::optional<std::uint64_t> if_version;
    if (roll >= 90) if_version = rng_.chance(0.3) ? 0 : version_guess(client, key);
    std::string value = fmt::format("c{}-{}", c, ++client.written);
    if (rng_.chance(scenario_.large_value_probability)) {
      value.resize(rng_.uniform_in(value.size(), scenario_.large_value_bytes), 'x');
    }
    op = testing::KvOp::set(key, std::move(value), if_version);
  } else {
    std::optional<std::uint64_t> if_version;
    if (roll >= 80) if_version = version_guess(client, key);
    op = testing::KvOp::remove(key, if_version);
  }
  client.busy = true;
  client.kind = op.kind;
  client.token = next_token_++;
  client.op = history_.invoke(c, op);
  trace_.note(scheduler_.now(),
              fmt::format("client {} #{} via {} (shard {}): {}", c, client.op,
                          nodes_.id(client.via).str(),
                          shard_for_key(op.key, scenario_.shard_count).value(),
                          testing::to_string(op)));
  const std::uint64_t token = client.token;
  scheduler_.at(scheduler_.now() + scenario_.request_timeout_ms * 1000 + kClientMarginUs, kNoOwner,
                [this, c, token] {
                  if (clients_[c].busy && clients_[c].token == token) end_unknown(c, "no answer");
                });
  auto done = [this, c, token](KvReply reply) { answer(c, token, std::move(reply)); };
  switch (op.kind) {
    case testing::KvOpKind::kGet: {
      GetOptions options;
      if (rng_.chance(scenario_.lease_read_probability)) options.consistency = ReadConsistency::kLease;
      if (bug_ == testing::ClusterSimBug::kStaleReads) options.consistency = ReadConsistency::kStale;
      via.get(op.key, options, done);
      break;
    }
    case testing::KvOpKind::kSet: {
      PutOptions options;
      options.if_version = op.if_version;
      via.put(op.key, op.value, options, done);
      break;
    }
    default: {
      RemoveOptions options;
      options.if_version = op.if_version;
      via.remove(op.key, options, done);
      break;
    }
  }
}

void ClusterClients::answer(std::uint32_t c, std::uint64_t token, KvReply reply) {
  Client& client = clients_[c];
  if (!client.busy || client.token != token) return;  // already given up (unknown)
  const testing::OpId op = client.op;
  const std::string& key = history_.operation(op).op.key;
  const StatusCode code = reply.status.code();
  std::string outcome;
  if (code == StatusCode::kTimeout) {
    history_.complete_unknown(op);
    ++stats_.unknown;
    outcome = "unknown";
  } else if (reply.status.is_ok() || code == StatusCode::kNotFound ||
             code == StatusCode::kVersionMismatch) {
    testing::KvResult result;
    if (code == StatusCode::kVersionMismatch) {
      result = testing::KvResult::version_mismatch(reply.current_version);
      client.versions[key] = reply.current_version;
    } else if (client.kind == testing::KvOpKind::kGet) {
      result = code == StatusCode::kNotFound ? testing::KvResult::not_found()
                                             : testing::KvResult::found(reply.value, reply.version);
      client.versions[key] = code == StatusCode::kNotFound ? 0 : reply.version;
    } else if (client.kind == testing::KvOpKind::kSet && code == StatusCode::kOk) {
      result = testing::KvResult::written(reply.version);
      client.versions[key] = reply.version;
    } else if (client.kind == testing::KvOpKind::kRemove && code == StatusCode::kOk) {
      result = testing::KvResult::removed(reply.deleted);
      client.versions[key] = 0;
    } else {
      // NotFound for a write: not an answer the API gives. Record it as the
      // checker sees it (an ok op that fits nothing fails validation).
      result = testing::KvResult::not_found();
    }
    history_.complete_ok(op, result);
    ++stats_.ok;
    outcome = testing::to_string(result);
  } else {
    history_.complete_fail(op);
    ++stats_.fail;
    outcome = "fail " + reply.status.to_string();
  }
  client.busy = false;
  trace_.note(scheduler_.now(), fmt::format("client {} #{} -> {}", c, op, outcome));
  schedule_next(c, rng_.uniform_in(0, kMaxThinkUs));
}

void ClusterClients::end_unknown(std::uint32_t c, const char* why) {
  Client& client = clients_[c];
  history_.complete_unknown(client.op);
  ++stats_.unknown;
  client.busy = false;
  trace_.note(scheduler_.now(), fmt::format("client {} #{} -> unknown ({})", c, client.op, why));
  schedule_next(c, rng_.uniform_in(0, kMaxThinkUs));
}

void ClusterClients::on_node_down(std::uint32_t node) {
  for (std::uint32_t c = 0; c < clients_.size(); ++c) {
    if (clients_[c].busy && clients_[c].via == node) end_unknown(c, "its node crashed");
  }
}

}  // namespace nodenomad::sim_cluster
