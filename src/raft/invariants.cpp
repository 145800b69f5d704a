#include "nodenomad/raft/invariants.hpp"

#include <fmt/format.h>

#include <functional>
#include <limits>

namespace nodenomad {

namespace {

Status violated(std::string message) { return Status::failed("raft invariant: " + message); }

std::size_t hash_of(std::string_view data) { return std::hash<std::string_view>{}(data); }

constexpr Term kNeverSeen{std::numeric_limits<std::uint64_t>::max()};

}  // namespace

Status Invariants::check(std::span<const RaftEngine* const> engines) {
  for (const RaftEngine* engine : engines) {
    NodeView& view = views_[engine->id()];
    NN_RETURN_IF_ERROR(check_leader(*engine));
    NN_RETURN_IF_ERROR(scan_log(*engine, view));
    NN_RETURN_IF_ERROR(check_committed(*engine, view));
  }
  for (const RaftEngine* engine : engines) {
    if (engine->role() == RaftRole::kLeader) {
      NN_RETURN_IF_ERROR(check_completeness(*engine, views_[engine->id()]));
    }
  }
  return Status::ok();
}

Status Invariants::check_leader(const RaftEngine& engine) {
  if (engine.role() != RaftRole::kLeader) return Status::ok();
  auto [it, inserted] = leaders_.emplace(engine.term(), engine.id());
  if (!inserted && it->second != engine.id()) {
    return violated(fmt::format("two leaders in term {}: {} and {}", engine.term().value(),
                                it->second.str(), engine.id().str()));
  }
  return Status::ok();
}

Status Invariants::scan_log(const RaftEngine& engine, NodeView& view) {
  const LogIndex first = engine.first_index();
  const LogIndex last = engine.last_index();
  view.terms.resize(static_cast<std::size_t>(last.value()) + 1);
  bool prev_changed = false;
  for (LogIndex i = first; i <= last; ++i) {
    const Result<Term> term = engine.term_at(i);
    if (!term.is_ok()) {
      return violated(fmt::format("{}: term of index {} in [{}, {}] unreadable: {}",
                                  engine.id().str(), i.value(), first.value(), last.value(),
                                  term.status().to_string()));
    }
    Term& seen = view.terms[static_cast<std::size_t>(i.value())];
    const bool changed = seen != *term;
    if (changed || prev_changed) NN_RETURN_IF_ERROR(check_fact(engine, i, *term));
    seen = *term;
    prev_changed = changed;
  }
  return Status::ok();
}

Status Invariants::check_fact(const RaftEngine& engine, LogIndex index, Term term) {
  const Result<Term> prev_term = engine.term_at(index.prev());
  Result<std::vector<Entry>> entry = engine.entries(index, index.next(), 1);
  if (!prev_term.is_ok() || !entry.is_ok() || entry->size() != 1) {
    return violated(fmt::format("{}: entry {} unreadable", engine.id().str(), index.value()));
  }
  const EntryFact fact{*prev_term, hash_of(entry->front().data), entry->front().type};
  auto [it, inserted] = facts_.emplace(std::make_pair(index, term), fact);
  if (inserted) return Status::ok();
  if (it->second.prev_term != fact.prev_term) {
    return violated(fmt::format(
        "log matching: {} holds ({}, term {}) after term {}, another log after term {}",
        engine.id().str(), index.value(), term.value(), fact.prev_term.value(),
        it->second.prev_term.value()));
  }
  if (it->second.data_hash != fact.data_hash || it->second.type != fact.type) {
    return violated(fmt::format("log matching: {} holds a different entry at ({}, term {})",
                                engine.id().str(), index.value(), term.value()));
  }
  return Status::ok();
}

Status Invariants::check_committed(const RaftEngine& engine, NodeView& view) {
  const LogIndex commit = engine.commit_index();
  if (commit < view.last_commit) {
    return violated(fmt::format("{}: commit moved backwards from {} to {}", engine.id().str(),
                                view.last_commit.value(), commit.value()));
  }
  view.last_commit = commit;
  const LogIndex snapshot = engine.first_index().prev();
  for (LogIndex i = snapshot.next(); i <= commit; ++i) {
    const Term term = view.terms[static_cast<std::size_t>(i.value())];
    const auto slot = static_cast<std::size_t>(i.value() - 1);
    if (committed_.size() <= slot) committed_.resize(slot + 1, CommittedFact{Term(0), kNeverSeen});
    CommittedFact& fact = committed_[slot];
    if (fact.term == Term(0)) fact.term = term;
    if (fact.term != term) {
      return violated(fmt::format(
          "state-machine safety: {} commits index {} at term {}, but term {} was committed there",
          engine.id().str(), i.value(), term.value(), fact.term.value()));
    }
    fact.seen_at_term = std::min(fact.seen_at_term, engine.term());
  }
  return Status::ok();
}

Status Invariants::check_completeness(const RaftEngine& leader, const NodeView& view) const {
  const LogIndex snapshot = leader.first_index().prev();
  const LogIndex last = leader.last_index();
  for (std::size_t slot = 0; slot < committed_.size(); ++slot) {
    const CommittedFact& fact = committed_[slot];
    const LogIndex index(slot + 1);
    if (fact.term == Term(0) || fact.seen_at_term > leader.term() || index <= snapshot) continue;
    if (index > last || view.terms[slot + 1] != fact.term) {
      return violated(fmt::format(
          "leader completeness: leader {} of term {} lacks entry {} (term {}) committed by term {}",
          leader.id().str(), leader.term().value(), index.value(), fact.term.value(),
          fact.seen_at_term.value()));
    }
  }
  return Status::ok();
}

void Invariants::record_persisted(const NodeId& node, const HardState& state) {
  NodeView& view = views_[node];
  view.durable_commit = std::max(view.durable_commit, state.commit);
}

void Invariants::record_restart(const NodeId& node, LogIndex applied) {
  NodeView& view = views_[node];
  view.last_commit = view.durable_commit;
  view.last_applied = applied;
}

Status Invariants::record_applied(const NodeId& node, const Entry& entry) {
  NodeView& view = views_[node];
  if (entry.index <= view.last_applied) {
    return violated(fmt::format("{} applied index {} after index {}", node.str(),
                                entry.index.value(), view.last_applied.value()));
  }
  view.last_applied = entry.index;
  const auto slot = static_cast<std::size_t>(entry.index.value() - 1);
  if (committed_.size() <= slot) committed_.resize(slot + 1, CommittedFact{Term(0), kNeverSeen});
  CommittedFact& fact = committed_[slot];
  if (fact.term == Term(0)) fact.term = entry.term;
  if (fact.term != entry.term) {
    return violated(fmt::format("state-machine safety: {} applied index {} at term {}, but term "
                                "{} was committed there",
                                node.str(), entry.index.value(), entry.term.value(),
                                fact.term.value()));
  }
  auto it = facts_.find({entry.index, entry.term});
  if (it != facts_.end() && it->second.data_hash != hash_of(entry.data)) {
    return violated(fmt::format("state-machine safety: {} applied different data at index {}",
                                node.str(), entry.index.value()));
  }
  return Status::ok();
}

}  // namespace nodenomad
