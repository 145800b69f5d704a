#include "raft/raft_harness.hpp"

#include <fmt/format.h>

#include "support/test_seed.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace nodenomad::raft_test {

std::uint64_t test_seed(std::string_view test_name, std::uint64_t fallback) {
  return test_support::test_seed(test_name, fallback);
}

NodeId node(int i) { return NodeId(fmt::format("n{}", i)); }

std::vector<NodeId> nodes(int first, int last) {
  std::vector<NodeId> out;
  for (int i = first; i <= last; ++i) out.push_back(node(i));
  return out;
}

// --- TestStateMachine ---------------------------------------------------------

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class StringSource final : public SnapshotSource {
 public:
  StringSource(LogIndex index, std::string bytes, std::shared_ptr<const bool> gate)
      : index_(index), bytes_(std::move(bytes)), gate_(std::move(gate)) {}
  LogIndex index() const override { return index_; }
  bool chunk_ready() const override { return gate_ == nullptr || *gate_; }
  Result<std::string> next_chunk(std::size_t max_bytes) override {
    const std::size_t n = std::min(max_bytes, bytes_.size() - pos_);
    std::string chunk = bytes_.substr(pos_, n);
    pos_ += n;
    return chunk;
  }

 private:
  LogIndex index_;
  std::string bytes_;
  std::shared_ptr<const bool> gate_;
  std::size_t pos_ = 0;
};

class CommandSink final : public SnapshotSink {
 public:
  CommandSink(TestStateMachine& sm, LogIndex index) : sm_(sm), index_(index) {}
  Status write_chunk(std::string_view chunk) override {
    sm_.note_restore_chunk(chunk.size());
    bytes_.append(chunk);
    return Status::ok();
  }
  Status finish() override {
    std::vector<std::string> commands;
    std::size_t pos = 0;
    while (pos < bytes_.size()) {
      if (bytes_.size() - pos < 4) return Status::corruption("test snapshot: torn length");
      std::uint32_t n = 0;
      for (int i = 0; i < 4; ++i) {
        n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes_[pos + i])) << (8 * i);
      }
      pos += 4;
      if (bytes_.size() - pos < n) return Status::corruption("test snapshot: torn command");
      commands.emplace_back(bytes_.substr(pos, n));
      pos += n;
    }
    sm_.replace(index_, std::move(commands));
    return Status::ok();
  }

 private:
  TestStateMachine& sm_;
  LogIndex index_;
  std::string bytes_;
};

}  // namespace

Result<std::string> TestStateMachine::apply(LogIndex index, std::string_view command) {
  NN_ASSERT(index > applied_, "apply(", index, ") after ", applied_);
  applied_ = index;
  if (!command.empty()) commands_.emplace_back(command);
  return std::string("ok");
}

Result<std::unique_ptr<SnapshotSource>> TestStateMachine::open_snapshot() {
  std::string bytes;
  for (const std::string& c : commands_) {
    put_u32(bytes, static_cast<std::uint32_t>(c.size()));
    bytes += c;
  }
  return std::unique_ptr<SnapshotSource>(new StringSource(applied_, std::move(bytes), snapshot_gate_));
}

Result<std::unique_ptr<SnapshotSink>> TestStateMachine::begin_restore(LogIndex index) {
  return std::unique_ptr<SnapshotSink>(new CommandSink(*this, index));
}

void TestStateMachine::replace(LogIndex index, std::vector<std::string> commands) {
  applied_ = index;
  commands_ = std::move(commands);
  ++restores_;
}

void TestStateMachine::note_restore_chunk(std::size_t bytes) {
  largest_restore_chunk_ = std::max(largest_restore_chunk_, bytes);
}

// --- Cluster ------------------------------------------------------------------

RaftConfig default_config() {
  RaftConfig c;
  c.election_timeout_ticks = 10;
  c.heartbeat_interval_ticks = 1;
  return c;
}

Cluster::Cluster(const std::vector<NodeId>& voters, const std::vector<NodeId>& learners,
                 RaftConfig base, std::uint64_t seed)
    : seed_(seed), base_(std::move(base)) {
  ConfState conf;
  conf.voters = voters;
  conf.learners = learners;
  std::sort(conf.voters.begin(), conf.voters.end());
  std::sort(conf.learners.begin(), conf.learners.end());
  std::vector<NodeId> all = voters;
  all.insert(all.end(), learners.begin(), learners.end());
  for (const NodeId& id : all) {
    add_empty_node(id);
    const Status s = RaftEngine::bootstrap(*nodes_.at(id).store, conf);
    NN_ASSERT(s.is_ok(), s.to_string());
    nodes_.at(id).engine.reset();
    open_engine(nodes_.at(id));
  }
}

void Cluster::add_empty_node(const NodeId& id) {
  TestNode n;
  n.id = id;
  n.config = base_;
  n.config.id = id;
  n.store = std::make_unique<MemoryLogStore>();
  n.state_machine = std::make_unique<TestStateMachine>();
  n.rng_seed = seed_ * 1000003 + std::hash<std::string>{}(id.str());
  auto [it, inserted] = nodes_.emplace(id, std::move(n));
  NN_ASSERT(inserted, "node ", id, " exists");
  open_engine(it->second);
}

void Cluster::open_engine(TestNode& n) {
  // A restarted node draws a fresh stream, as a real restart would.
  Rng rng(n.rng_seed + n.restarts);
  Result<std::unique_ptr<RaftEngine>> engine =
      RaftEngine::open(n.config, *n.store, n.state_machine.get(), rng);
  NN_ASSERT(engine.is_ok(), engine.status().to_string());
  n.engine = std::move(engine).value();
}

TestNode& Cluster::test_node(const NodeId& id) {
  auto it = nodes_.find(id);
  NN_ASSERT(it != nodes_.end(), "no node ", id);
  return it->second;
}

RaftEngine& Cluster::engine(const NodeId& id) {
  TestNode& n = test_node(id);
  NN_ASSERT(n.engine != nullptr, "node ", id, " is down");
  return *n.engine;
}

TestStateMachine& Cluster::state_machine(const NodeId& id) { return *test_node(id).state_machine; }
MemoryLogStore& Cluster::store(const NodeId& id) { return *test_node(id).store; }

bool Cluster::up(const NodeId& id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && it->second.engine != nullptr;
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

void Cluster::report(const Status& status) {
  if (status.is_ok()) return;
  if (on_violation) {
    on_violation(status);
  } else {
    NN_ASSERT(false, status.to_string());
  }
}

void Cluster::check_invariants() {
  std::vector<const RaftEngine*> live;
  for (const auto& [id, n] : nodes_) {
    if (n.engine) live.push_back(n.engine.get());
  }
  report(invariants_.check(live));
}

void Cluster::tick(const NodeId& id, int times) {
  for (int i = 0; i < times; ++i) {
    engine(id).tick();
    check_invariants();
  }
}

void Cluster::tick_all(int times) {
  for (int i = 0; i < times; ++i) {
    for (auto& [id, n] : nodes_) {
      if (n.engine) n.engine->tick();
    }
    check_invariants();
  }
}

void Cluster::persist(TestNode& n, const Ready& rd) {
  if (rd.snapshot) report(n.store->install_snapshot(*rd.snapshot));
  if (!rd.entries.empty()) report(n.store->append(rd.entries));
  if (rd.hard_state) report(n.store->set_hard_state(*rd.hard_state));
  if (rd.must_sync()) {
    const Result<LogIndex> durable = n.store->sync();
    if (!durable.is_ok()) report(durable.status());
  }
  if (rd.hard_state) invariants_.record_persisted(n.id, *rd.hard_state);
}

void Cluster::apply(TestNode& n, const Ready& rd) {
  for (const Entry& e : rd.committed_entries) {
    report(invariants_.record_applied(n.id, e));
    if (e.type == EntryType::kNormal) {
      const Result<std::string> r = n.state_machine->apply(e.index, e.data);
      if (!r.is_ok()) report(r.status());
    }
  }
  n.read_states.insert(n.read_states.end(), rd.read_states.begin(), rd.read_states.end());
}

bool Cluster::process_ready(const NodeId& id) {
  TestNode& n = test_node(id);
  if (!n.engine || !n.engine->has_ready()) return false;
  Ready rd = n.engine->ready();
  complete_ready(id, rd);
  return true;
}

void Cluster::complete_ready(const NodeId& id, Ready& rd) {
  TestNode& n = test_node(id);
  for (Message& m : rd.messages) queue_.push_back(std::move(m));
  persist(n, rd);
  for (Message& m : rd.messages_after_persist) queue_.push_back(std::move(m));
  apply(n, rd);
  n.engine->advance(rd);
  check_invariants();
}

bool Cluster::process_all_ready() {
  bool any = false;
  for (const NodeId& id : ids()) any = process_ready(id) || any;
  return any;
}

bool Cluster::link_up(const NodeId& from, const NodeId& to) const {
  return !cut_links_.contains({from, to});
}

std::size_t Cluster::deliver_all() {
  std::deque<Message> batch;
  batch.swap(queue_);
  std::size_t delivered = 0;
  for (Message& m : batch) {
    if (!up(m.to) || !link_up(m.from, m.to) || (drop_rule && drop_rule(m))) continue;
    if (on_deliver) on_deliver(m);
    report(test_node(m.to).engine->step(m));
    ++delivered;
    check_invariants();
  }
  return delivered;
}

bool Cluster::deliver_first(const std::function<bool(const Message&)>& match) {
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (!match(*it)) continue;
    Message m = std::move(*it);
    queue_.erase(it);
    if (!up(m.to)) return true;
    if (on_deliver) on_deliver(m);
    report(test_node(m.to).engine->step(m));
    check_invariants();
    return true;
  }
  return false;
}

void Cluster::deliver_index(std::size_t i) {
  NN_ASSERT(i < queue_.size(), "no queued message ", i);
  Message m = std::move(queue_[i]);
  queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
  if (!up(m.to) || !link_up(m.from, m.to) || (drop_rule && drop_rule(m))) return;
  if (on_deliver) on_deliver(m);
  report(test_node(m.to).engine->step(m));
  check_invariants();
}

std::size_t Cluster::drop_queued(const std::function<bool(const Message&)>& match) {
  const std::size_t before = queue_.size();
  std::erase_if(queue_, match);
  return before - queue_.size();
}

void Cluster::cut(const NodeId& a, const NodeId& b) {
  cut_links_.insert({a, b});
  cut_links_.insert({b, a});
}

void Cluster::cut_one_way(const NodeId& from, const NodeId& to) { cut_links_.insert({from, to}); }

void Cluster::isolate(const NodeId& id) {
  for (const auto& [other, n] : nodes_) {
    if (other != id) cut(id, other);
  }
}

void Cluster::partition(const std::vector<std::vector<NodeId>>& groups) {
  for (std::size_t i = 0; i < groups.size(); ++i) {
    for (std::size_t j = 0; j < groups.size(); ++j) {
      if (i == j) continue;
      for (const NodeId& a : groups[i]) {
        for (const NodeId& b : groups[j]) cut_links_.insert({a, b});
      }
    }
  }
}

void Cluster::heal() { cut_links_.clear(); }

bool Cluster::stabilize(int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    const bool readied = process_all_ready();
    const std::size_t delivered = deliver_all();
    if (!readied && delivered == 0 && queue_.empty()) return true;
  }
  return false;
}

void Cluster::crash(const NodeId& id) {
  TestNode& n = test_node(id);
  n.engine.reset();
  check_invariants();
}

void Cluster::crash_mid_ready(const NodeId& id) {
  TestNode& n = test_node(id);
  if (n.engine && n.engine->has_ready()) {
    Ready rd = n.engine->ready();
    for (Message& m : rd.messages) queue_.push_back(std::move(m));
  }
  crash(id);
}

void Cluster::restart(const NodeId& id) {
  TestNode& n = test_node(id);
  NN_ASSERT(n.engine == nullptr, "restart of live node ", id);
  ++n.restarts;
  open_engine(n);
  invariants_.record_restart(id, n.engine->applied_index());
  check_invariants();
}

void Cluster::restart_empty(const NodeId& id) {
  TestNode& n = test_node(id);
  NN_ASSERT(n.engine == nullptr, "restart_empty of live node ", id);
  n.store = std::make_unique<MemoryLogStore>();
  n.state_machine = std::make_unique<TestStateMachine>();
  invariants_.record_wiped(id);
  ++n.restarts;
  open_engine(n);
  check_invariants();
}

void Cluster::elect(const NodeId& id) {
  report(engine(id).campaign());
  stabilize();
  if (engine(id).role() != RaftRole::kLeader) {
    report(Status::failed(fmt::format("{} did not become leader (role {}, term {})", id.str(),
                                      raft_role_name(engine(id).role()),
                                      engine(id).term().value())));
  }
}

NodeId Cluster::leader() const {
  NodeId best;
  Term best_term;
  for (const auto& [id, n] : nodes_) {
    if (n.engine && n.engine->role() == RaftRole::kLeader && n.engine->term() >= best_term) {
      best = id;
      best_term = n.engine->term();
    }
  }
  return best;
}

Result<ProposeResult> Cluster::propose(const NodeId& id, std::string command) {
  return engine(id).propose(std::move(command));
}

}  // namespace nodenomad::raft_test
