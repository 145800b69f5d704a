// A correct in-memory NodeNomad key-value store and a seeded simulation of
// concurrent clients against it: the histories it records are linearizable
// by construction, since every operation takes effect atomically at one
// chosen moment between its invoke and its completion (or, for unknown
// outcomes, at some moment after its invoke, or never).
//
// Versions follow the storage engine exactly: a live key counts + 1, and a
// created key starts above an engine-wide floor (the highest version ever
// removed), so versions jump when keys are re-created.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::testing::checker_test {

class SimulatedStore {
 public:
  KvResult apply(const KvOp& op) {
    const auto it = records_.find(op.key);
    const bool live = it != records_.end();
    const std::uint64_t current = live ? it->second.version : 0;
    if (op.kind == KvOpKind::kGet) {
      return live ? KvResult::found(it->second.value, current) : KvResult::not_found();
    }
    if (op.kind == KvOpKind::kExpire) {
      if (!live || current != *op.if_version) return KvResult::removed(false);
      remove_record(op.key);
      return KvResult::removed(true);
    }
    if (op.if_version && *op.if_version != current) return KvResult::version_mismatch(current);
    if (op.kind == KvOpKind::kRemove) {
      if (live) remove_record(op.key);
      return KvResult::removed(live);
    }
    const std::uint64_t version = (live ? current : floor_) + 1;
    records_[op.key] = Record{op.value, version};
    return KvResult::written(version);
  }

 private:
  struct Record {
    std::string value;
    std::uint64_t version = 0;
  };

  void remove_record(const std::string& key) {
    const std::uint64_t version = records_.at(key).version;
    if (version > floor_) floor_ = version;
    records_.erase(key);
  }

  std::map<std::string, Record> records_;
  std::uint64_t floor_ = 0;
};

struct SimulationOptions {
  std::size_t clients = 4;
  std::size_t keys = 3;
  std::size_t operations = 300;
  double unknown_chance = 0.05;    // an operation's outcome is lost
  double fail_chance = 0.03;       // an operation is refused, not applied
  double late_apply_chance = 0.5;  // an unknown op still pending applies later
  // false: answers carry no version and clients never compare-and-set
  // (a plain register, as a client that ignores versions sees the store).
  bool report_versions = true;
};

// Runs `options.operations` operations of `options.clients` clients, each at
// most one request in flight, with a random interleaving of invokes,
// effects and completions chosen by `rng`.
class ClientSimulation {
 public:
  ClientSimulation(Rng& rng, SimulationOptions options) : rng_(rng), options_(options) {
    clients_.resize(options_.clients);
    last_seen_version_.assign(options_.clients * options_.keys, 0);
  }

  History run() {
    while (invoked_ < options_.operations || busy()) step();
    return std::move(history_);
  }

 private:
  struct InFlight {
    OpId id = 0;
    KvOp op;
    std::optional<KvResult> result;  // set once the store applied it
  };

  bool busy() const {
    for (const auto& client : clients_) {
      if (client) return true;
    }
    return false;
  }

  void step() {
    if (!limbo_.empty() && rng_.chance(0.1)) {
      const std::size_t i = rng_.uniform(limbo_.size());
      if (rng_.chance(options_.late_apply_chance)) store_.apply(limbo_[i].op);
      limbo_.erase(limbo_.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
    const std::size_t c = rng_.uniform(clients_.size());
    std::optional<InFlight>& slot = clients_[c];
    if (!slot) {
      if (invoked_ < options_.operations) invoke(c);
      return;
    }
    if (!slot->result && rng_.chance(0.5)) {
      slot->result = store_.apply(slot->op);  // the linearization point
      return;
    }
    if (rng_.chance(0.3)) complete(c);
  }

  void invoke(std::size_t c) {
    const std::size_t key_index = rng_.uniform(options_.keys);
    const std::string key = fmt::format("key-{}", key_index);
    const std::uint64_t seen = last_seen_version_[c * options_.keys + key_index];
    const std::uint64_t roll = rng_.uniform(100);
    KvOp op;
    // Without versions a client cannot compare-and-set: it is a plain register.
    const bool conditional = options_.report_versions && rng_.chance(0.3);
    if (roll < 40) {
      op = KvOp::get(key);
    } else if (roll < 80) {
      std::optional<std::uint64_t> if_version;
      if (conditional) if_version = rng_.chance(0.2) ? 0 : seen;
      op = KvOp::set(key, fmt::format("c{}-{}", c, invoked_), if_version);
    } else if (roll < 95 || !options_.report_versions) {
      op = KvOp::remove(key, conditional ? std::optional<std::uint64_t>(seen) : std::nullopt);
    } else {
      op = KvOp::expire(key, seen);
    }
    ++invoked_;
    InFlight flight;
    flight.id = history_.invoke(c, op);
    flight.op = std::move(op);
    clients_[c] = std::move(flight);
  }

  void complete(std::size_t c) {
    InFlight flight = std::move(*clients_[c]);
    clients_[c].reset();
    if (!flight.result && rng_.chance(options_.fail_chance)) {
      history_.complete_fail(flight.id);
      return;
    }
    if (rng_.chance(options_.unknown_chance)) {
      history_.complete_unknown(flight.id);
      if (!flight.result) limbo_.push_back(std::move(flight));
      return;
    }
    if (!flight.result) flight.result = store_.apply(flight.op);
    remember_version(c, flight.op.key, *flight.result);
    if (!options_.report_versions) flight.result->version = kVersionNotReported;
    history_.complete_ok(flight.id, *flight.result);
  }

  void remember_version(std::size_t c, const std::string& key, const KvResult& result) {
    const std::size_t key_index = std::stoul(key.substr(4));
    std::uint64_t& seen = last_seen_version_[c * options_.keys + key_index];
    if (result.kind == KvResultKind::kWritten || result.kind == KvResultKind::kFound ||
        result.kind == KvResultKind::kVersionMismatch) {
      seen = result.version;
    } else if (result.kind == KvResultKind::kNotFound) {
      seen = 0;
    }
  }

  Rng& rng_;
  SimulationOptions options_;
  SimulatedStore store_;
  History history_;
  std::vector<std::optional<InFlight>> clients_;
  std::vector<InFlight> limbo_;  // unknown outcome, not applied yet
  std::vector<std::uint64_t> last_seen_version_;
  std::size_t invoked_ = 0;
};

}  // namespace nodenomad::testing::checker_test
