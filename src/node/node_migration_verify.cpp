// Verify (docs/migration.md, "Execution"): the shard leader and the target
// digest the shard at one index, off the loop; bad buckets are re-sent by the
// leader and replaced on the target. No promotion without a match.
#include <fmt/format.h>

#include "node/migration_support.hpp"
#include "node/node_impl.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/storage/shard_digest.hpp"

namespace nodenomad {

using node::answer_with;
using node::contains;

namespace {

// Repair rounds of Verify before the operation is failed (and rolled back).
constexpr std::uint32_t kMaxRepairRounds = 3;

}  // namespace

// --- Verify, the leader's side ---

void Node::Impl::verify_step(node::GroupReplica& replica, const node::ShardCall& call,
                             node::ShardReport& report) {
  const ShardId shard = call.shard;
  auto& slot = verify_sessions_[shard];
  if (!slot || slot->op_id != call.op_id || slot->target != call.target) {
    slot = std::make_unique<VerifySession>();
    slot->op_id = call.op_id;
    slot->target = call.target;
  }
  VerifySession& v = *slot;
  using Phase = VerifySession::Phase;
  if (v.phase == Phase::kIdle) {
    start_verify(replica, v);
  } else if (v.phase == Phase::kDigesting && v.leader_digest && !v.target_digest &&
             !v.call_in_flight) {
    node::TargetCall poll{v.op_id, shard, node::TargetAction::kPoll, v.index, {}, {}};
    node::RpcRequest rpc;
    rpc.op = node::RpcOp::kMigrateTarget;
    rpc.value = node::encode_target_call(poll);
    v.call_in_flight = true;
    const std::string op_id = v.op_id;
    const std::uint32_t round = v.round;
    call_admin(v.target, rpc, [this, shard, op_id, round](Result<node::RpcResponse> r) {
      auto it = verify_sessions_.find(shard);
      if (it == verify_sessions_.end() || it->second->op_id != op_id) return;
      VerifySession& s = *it->second;
      s.call_in_flight = false;
      if (!r.is_ok() || s.round != round || s.phase != Phase::kDigesting) return;
      if (r->reply.status.is(StatusCode::kAborted)) {
        s.phase = Phase::kIdle;  // the target moved past the index: a new one
        s.note = "the target was past the verify index; starting again";
        return;
      }
      if (!r->reply.status.is_ok()) return;
      Result<node::TargetReport> tr = node::decode_target_report(r->reply.value);
      if (!tr.is_ok() || tr->digest.empty() || tr->round != round) return;
      Result<ShardDigest> d = decode_shard_digest(tr->digest);
      if (!d.is_ok()) return;
      s.target_digest = *d;
      compare_digests(shard, s);
    });
  }
  (void)report;
}

void Node::Impl::start_verify(node::GroupReplica& replica, VerifySession& v) {
  const ShardId shard = shard_of_group(replica.group());
  // The digests are taken at a fresh index L: an empty entry the leader
  // logs now, which the target cannot have applied before it hears "hold
  // at L" (the hold leaves first, and L commits a round trip later).
  const LogIndex index = replica.engine().last_index() + 1;
  node::TargetCall hold{v.op_id, shard, node::TargetAction::kHold, index, {}, {}};
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kMigrateTarget;
  rpc.value = node::encode_target_call(hold);
  v = VerifySession{v.op_id, v.target, VerifySession::Phase::kDigesting, index, nullptr,
                    std::nullopt, std::nullopt, 0, v.mismatches, true, "digesting"};
  const std::string op_id = v.op_id;
  call_admin(v.target, rpc, [this, shard, op_id, index](Result<node::RpcResponse> r) {
    auto it = verify_sessions_.find(shard);
    if (it == verify_sessions_.end() || it->second->op_id != op_id || it->second->index != index) {
      return;
    }
    VerifySession& s = *it->second;
    s.call_in_flight = false;
    if (!r.is_ok() || !r->reply.status.is_ok()) {
      s.phase = VerifySession::Phase::kIdle;
      s.note = r.is_ok() ? std::string(r->reply.status.message()) : "the target did not answer";
    }
  });
  Result<LogIndex> logged = replica.propose_indexed(std::string(), [](Result<std::string>) {});
  if (!logged.is_ok() || *logged != index) {
    v.phase = VerifySession::Phase::kIdle;
    v.note = "could not log the verify marker";
    return;
  }
  replica.when_applied(index, [this, shard, op_id, index](bool exact) {
    auto it = verify_sessions_.find(shard);
    if (it == verify_sessions_.end() || it->second->op_id != op_id || it->second->index != index) {
      return;
    }
    VerifySession& s = *it->second;
    if (!exact) {
      s.phase = VerifySession::Phase::kIdle;
      return;
    }
    // The capture is for a repair (its buckets at this index); the digest
    // is the engine's kept sums, O(1).
    Result<std::shared_ptr<const StateCapture>> capture = storage_.at(shard)->capture();
    if (!capture.is_ok()) {
      s.phase = VerifySession::Phase::kIdle;
      return;
    }
    s.capture = *capture;
    s.leader_digest = s.capture->digest();
  });
}

void Node::Impl::compare_digests(ShardId shard, VerifySession& v) {
  using Phase = VerifySession::Phase;
  const std::vector<std::uint32_t> bad = v.leader_digest->differing_buckets(*v.target_digest);
  const bool match = bad.empty() && v.leader_digest->root() == v.target_digest->root();
  node::TargetCall call{v.op_id, shard, node::TargetAction::kRelease, v.index, {}, {}};
  if (match) {
    drop_off_loop(std::move(v.capture));  // it pins the state's old records
    v.phase = Phase::kMatched;
    v.note = fmt::format("digests match at index {} ({} keys)", v.index.value(),
                         v.leader_digest->keys);
  } else if (v.round >= kMaxRepairRounds) {
    drop_off_loop(std::move(v.capture));
    v.phase = Phase::kFailed;
    v.note = fmt::format("digests still differ in {} buckets after {} repairs", bad.size(),
                         v.round);
  } else {
    // Re-send only the buckets that differ, taken from the leader's state
    // at the same index; the target replaces them and digests again.
    v.mismatches += static_cast<std::uint32_t>(std::max<std::size_t>(bad.size(), 1));
    Result<std::vector<std::string>> chunks =
        v.capture->export_buckets(bad, options_.migration_chunk_bytes);
    if (!chunks.is_ok()) {
      v.phase = Phase::kFailed;
      v.note = std::string(chunks.status().message());
    } else {
      call.action = node::TargetAction::kRepair;
      call.buckets = bad;
      call.chunks = std::move(*chunks);
      ++v.round;
      call.round = v.round;
      v.target_digest.reset();
      v.note = fmt::format("re-sending {} buckets (round {})", bad.size(), v.round);
      nodenomad::log(LogLevel::kWarn, "migration",
                     fmt::format("shard {}: {} digest buckets differ on {}; {}", shard.value(),
                                 bad.size(), v.target.str(), v.note));
    }
  }
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kMigrateTarget;
  rpc.value = node::encode_target_call(call);
  call_admin(v.target, rpc, [](Result<node::RpcResponse>) {});
}

// --- Verify, the target's side ---

void Node::Impl::serve_migrate_target(const node::TargetCall& call,
                                      std::function<void(node::RpcResponse)> answer) {
  node::GroupReplica* replica = shard_replica(call.shard);
  if (replica == nullptr) {
    return answer(answer_with(Status::unavailable(
        fmt::format("{} holds no replica of shard {} yet", options_.id.str(), call.shard.value()))));
  }
  StorageEngine& storage = *storage_.at(call.shard);
  auto& slot = target_sessions_[call.shard];
  switch (call.action) {
    case node::TargetAction::kHold: {
      if (slot && slot->op_id == call.op_id && slot->index == call.index && !slot->aborted) {
        // A duplicate: this hold is in place. Starting it again would
        // release the apply hold and take a second digest of the round.
        return answer(answer_with(Status::ok()));
      }
      replica->release_apply_hold();
      if (auto ended = promoted_ops_.find(call.shard);
          ended != promoted_ops_.end() && ended->second == call.op_id) {
        // A late call of the Verify stage (delayed, duplicated, or sent on
        // by a new leader): a new hold would stop a voter applying.
        slot.reset();
        return answer(answer_with(Status::aborted(
            fmt::format("operation {} is past Verify: its promotion has begun", call.op_id))));
      }
      if (storage.last_applied_index() >= call.index) {
        slot.reset();
        return answer(answer_with(Status::aborted("already past the verify index")));
      }
      slot = std::make_unique<TargetSession>();
      slot->op_id = call.op_id;
      slot->index = call.index;
      replica->hold_apply_after(call.index);
      const ShardId shard = call.shard;
      const std::string op_id = call.op_id;
      const LogIndex index = call.index;
      replica->when_applied(index, [this, shard, op_id, index](bool exact) {
        auto it = target_sessions_.find(shard);
        if (it == target_sessions_.end() || !it->second || it->second->op_id != op_id ||
            it->second->index != index) {
          return;
        }
        if (!exact) {
          it->second->aborted = true;
          return;
        }
        digest_target(shard);
      });
      // Never held for good: a leader that went quiet does not stall us.
      post_after(options_.migration_timeout_ms, [shard, op_id, index](Impl& self) {
        auto it = self.target_sessions_.find(shard);
        if (it == self.target_sessions_.end() || !it->second || it->second->op_id != op_id ||
            it->second->index != index) {
          return;
        }
        self.target_sessions_.erase(it);
        if (node::GroupReplica* r = self.shard_replica(shard)) r->release_apply_hold();
      });
      return answer(answer_with(Status::ok()));
    }
    case node::TargetAction::kPoll: {
      if (!slot || slot->op_id != call.op_id || slot->index != call.index || slot->aborted) {
        return answer(answer_with(Status::aborted("no verify hold at that index here")));
      }
      node::TargetReport report{storage.last_applied_index(), slot->digest, slot->round};
      return answer(answer_with(Status::ok(), node::encode_target_report(report)));
    }
    case node::TargetAction::kRepair: {
      if (!slot || slot->op_id != call.op_id || slot->index != call.index ||
          !replica->apply_held() || storage.last_applied_index() != call.index) {
        return answer(answer_with(Status::aborted("not held at the verify index")));
      }
      if (call.round <= slot->round) {
        // A duplicate of a repair already applied: a second one would move
        // the round past the leader's, which would then ignore every
        // digest until the stage timed out.
        return answer(answer_with(Status::ok()));
      }
      if (Status s = storage.replace_buckets(call.buckets, call.chunks); !s.is_ok()) {
        return answer(answer_with(std::move(s)));
      }
      // The repaired state must survive a restart: the log cannot rebuild it.
      if (Status s = storage.snapshot(); !s.is_ok()) {
        fail_node(s.with_context("persisting a repaired shard"));
        return answer(answer_with(Status::failed("persisting the repair failed")));
      }
      ++slot->round;
      slot->digest.clear();
      digest_target(call.shard);
      return answer(answer_with(Status::ok()));
    }
    case node::TargetAction::kRelease:
      // Only this operation's hold (a late release of an older one must not
      // end a newer one's).
      if (slot && slot->op_id != call.op_id) return answer(answer_with(Status::ok()));
      // Index 0: sent by Update's promote, so this operation verifies no more.
      if (call.index == LogIndex(0)) promoted_ops_[call.shard] = call.op_id;
      replica->release_apply_hold();
      target_sessions_.erase(call.shard);
      return answer(answer_with(Status::ok()));
  }
}

void Node::Impl::digest_target(ShardId shard) {
  auto it = target_sessions_.find(shard);
  if (it == target_sessions_.end() || !it->second) return;
  if (options_.before_verify_digest_for_testing) {
    options_.before_verify_digest_for_testing(shard, it->second->index, it->second->round,
                                              *storage_.at(shard));
  }
  // O(1): the engine keeps the digest's sums. Held at the index, so this
  // is the state at it.
  it->second->digest = encode_shard_digest(storage_.at(shard)->digest());
}

}  // namespace nodenomad
