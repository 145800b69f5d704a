// The coordinator's client calls (create, rebalance, drain, list, get,
// control) and what it reports: operation statuses and metrics. The driver
// of the stages is migration_coordinator.cpp.
#include <fmt/format.h>

#include "node/migration_coordinator.hpp"
#include "node/migration_support.hpp"
#include "node/node_impl.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/migration/migration_plan.hpp"

namespace nodenomad::node {

namespace {

// Share of the whole move done at the start of each stage (Transfer is
// weighted by bytes within its band).
double stage_floor(MigrationStage s) {
  switch (s) {
    case MigrationStage::kPrepare: return 0;
    case MigrationStage::kTransfer: return 5;
    case MigrationStage::kVerify: return 85;
    case MigrationStage::kUpdate: return 92;
    case MigrationStage::kCleanup: return 97;
    default: return 100;
  }
}

}  // namespace

// --- client calls ---

void MigrationCoordinator::handle(AdminCall call, Done done) {
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  if (!view->initialized() || !view->bootstrap_logged()) {
    return done(Status::unavailable("the cluster's metadata is not ready yet"));
  }
  switch (call.action) {
    case AdminAction::kCreate: {
      Result<MigrationPlan> plan =
          create_migration_plan(*view, call.shards, call.source, call.target, PlanLimits{});
      if (!plan.is_ok()) return done(plan.status());
      return create(plan->moves, call.bandwidth_bytes_per_s, std::move(done));
    }
    case AdminAction::kRebalance: {
      Result<MigrationPlan> plan = plan_rebalance(*view, PlanLimits{});
      if (!plan.is_ok()) return done(plan.status());
      return create(plan->moves, 0, std::move(done));
    }
    case AdminAction::kDrain: return drain(call.source, std::move(done));
    case AdminAction::kExecute: {
      // A plan made from some view: each move must still be one the
      // planner would accept, at the epoch it was planned at.
      std::vector<MigrationMove> moves;
      for (std::size_t i = 0; i < call.shards.size(); ++i) {
        Result<MigrationPlan> one = create_migration_plan(*view, {call.shards[i]}, call.sources[i],
                                                          call.targets[i], PlanLimits{});
        if (!one.is_ok()) return done(one.status());
        const Epoch now = view->shard_map().placement(call.shards[i]).epoch;
        if (now != Epoch(call.epochs[i])) {
          return done(Status::version_mismatch(fmt::format(
              "shard {} is at epoch {}, the plan expected {}; plan again",
              call.shards[i].value(), now.value(), call.epochs[i])));
        }
        moves.push_back(one->moves.front());
      }
      if (moves.empty()) return done(Status::invalid_argument("the plan has no move"));
      return create(moves, call.bandwidth_bytes_per_s, std::move(done));
    }
    case AdminAction::kList: {
      std::vector<MigrationStatus> out;
      for (const auto& [key, rec] : view->records_in(kMigrationNamespace)) {
        Result<MigrationRecord> r = decode_migration_record(rec.value);
        if (r.is_ok()) out.push_back(status_of(*r));
      }
      std::stable_sort(out.begin(), out.end(), [](const MigrationStatus& a, const MigrationStatus& b) {
        return a.started_at_ms < b.started_at_ms;
      });
      return done(encode_migration_statuses(out));
    }
    case AdminAction::kGet: {
      auto found = find(call.op_id);
      if (!found.is_ok()) return done(found.status());
      return done(encode_migration_statuses({status_of(found->first)}));
    }
    case AdminAction::kControl: {
      auto found = find(call.op_id);
      if (!found.is_ok()) return done(found.status());
      MigrationRecord r = found->first;
      if (migration_stage_terminal(r.stage)) {
        return done(Status::invalid_argument(fmt::format(
            "operation {} has ended ({}); only a running operation takes a {}", r.id,
            migration_stage_name(r.stage),
            call.control == MigrationControl::kCancel ? "cancel" : "change")));
      }
      switch (call.control) {
        case MigrationControl::kCancel: r.cancel_requested = true; break;
        case MigrationControl::kPause: r.paused = true; break;
        case MigrationControl::kResume: r.paused = false; break;
        case MigrationControl::kSetBandwidth:
          if (call.bandwidth_bytes_per_s == 0) {
            return done(Status::invalid_argument(
                "bandwidth must be greater than 0 bytes/s; resume or pause instead"));
          }
          r.bandwidth_bytes_per_s = call.bandwidth_bytes_per_s;
          break;
      }
      metadata::PutRecord put{std::string(kMigrationNamespace), r.id, encode_migration_record(r),
                              found->second};
      return node_.propose_metadata(put, [this, r, done](Result<MetadataResult> result) {
        if (!result.is_ok()) return done(result.status());
        if (!result->ok()) {
          // The coordinator wrote the record meanwhile: the caller may retry.
          if (result->status.is(StatusCode::kVersionMismatch)) {
            return done(Status::unavailable(
                "the operation's record changed meanwhile; not applied, try again"));
          }
          return done(result->status);
        }
        done(encode_migration_statuses({status_of(r)}));
      });
    }
  }
  done(Status::invalid_argument("unknown migration call"));
}

void MigrationCoordinator::create(const std::vector<MigrationMove>& moves, std::uint64_t bandwidth,
                                  Done done) {
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  // One live operation per shard: a plan made before another operation's
  // learner shows in the ShardMap could otherwise move the shard twice.
  std::map<ShardId, std::string> busy;
  for (const auto& [key, rec] : view->records_in(kMigrationNamespace)) {
    Result<MigrationRecord> r = decode_migration_record(rec.value);
    if (r.is_ok() && !migration_stage_terminal(r->stage)) busy[r->shard] = r->id;
  }
  std::vector<MigrationMove> todo;
  for (const MigrationMove& m : moves) {
    auto it = busy.find(m.shard);
    if (it == busy.end()) {
      todo.push_back(m);
    } else if (moves.size() == 1) {
      return done(Status::invalid_argument(fmt::format(
          "shard {}: operation {} is already moving it", m.shard.value(), it->second)));
    }
  }
  last_seq_ = std::max(last_seq_ + 1, view->record_revision() + 1);
  MigrationBatch batch;
  batch.id = fmt::format("m{}", last_seq_);
  if (todo.empty()) return done(encode_migration_batch(batch));
  struct Pending {
    MigrationBatch batch;
    std::size_t waiting = 0;
    Status first_error;
    Done done;
  };
  auto pending = std::make_shared<Pending>();
  pending->batch = batch;
  pending->waiting = todo.size();
  pending->done = std::move(done);
  const std::uint64_t now = node_.wall_ms();
  for (const MigrationMove& m : todo) {
    MigrationRecord r;
    r.id = fmt::format("{}-s{}", batch.id, m.shard.value());
    r.batch_id = batch.id;
    r.shard = m.shard;
    r.source = m.source;
    r.target = m.target;
    r.expected_epoch = m.expected_epoch;
    r.bandwidth_bytes_per_s = bandwidth;
    r.created_ms = now;
    r.stage_started_ms = now;
    metadata::PutRecord put{std::string(kMigrationNamespace), r.id, encode_migration_record(r),
                            std::uint64_t{0}};
    node_.propose_metadata(put, [pending, id = r.id](Result<MetadataResult> result) {
      Status s = !result.is_ok() ? result.status() : result->status;
      if (s.is_ok()) {
        pending->batch.operations.push_back(id);
      } else if (pending->first_error.is_ok()) {
        pending->first_error = s;
      }
      if (--pending->waiting > 0) return;
      if (pending->batch.operations.empty() && !pending->first_error.is_ok()) {
        return pending->done(pending->first_error);
      }
      std::sort(pending->batch.operations.begin(), pending->batch.operations.end());
      pending->done(encode_migration_batch(pending->batch));
    });
  }
}

void MigrationCoordinator::drain(const NodeId& id, Done done) {
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  const Member* m = view->find_member(id);
  if (m == nullptr) {
    return done(Status::not_found(fmt::format("node {} is not a member", id.str())));
  }
  std::size_t active = 0;
  for (const Member& other : view->members()) active += other.state == MemberState::kActive;
  if (m->state == MemberState::kActive && active <= 1) {
    return done(Status::invalid_argument(fmt::format(
        "node {} is the last active member; nothing could take its shards", id.str())));
  }
  auto plan_now = [this, done] {
    Result<MigrationPlan> plan = plan_rebalance(*node_.view(), PlanLimits{});
    if (!plan.is_ok()) return done(plan.status());
    create(plan->moves, 0, done);
  };
  if (m->state == MemberState::kLeaving) return plan_now();
  node_.propose_metadata(metadata::SetMemberState{id, MemberState::kLeaving},
                         [done, plan_now](Result<MetadataResult> r) {
                           if (!r.is_ok()) return done(r.status());
                           if (!r->ok()) return done(r->status);
                           plan_now();
                         });
}

void MigrationCoordinator::on_member_added() {
  if (!node_.options().rebalance_on_join || !node_.leads_metadata()) return;
  AdminCall call;
  call.action = AdminAction::kRebalance;
  handle(call, [](Result<std::string> r) {
    if (!r.is_ok()) {
      nodenomad::log(LogLevel::kWarn, "migration",
                     "the rebalance after a join was not planned: " + r.status().to_string());
    }
  });
}

Result<std::pair<MigrationRecord, std::uint64_t>> MigrationCoordinator::find(
    const std::string& id) const {
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  const MetadataRecord* rec = view->find_record(kMigrationNamespace, id);
  if (rec == nullptr) return Status::not_found(fmt::format("no migration operation {}", id));
  NN_ASSIGN_OR_RETURN(MigrationRecord r, decode_migration_record(rec->value));
  return std::make_pair(std::move(r), rec->version);
}

MigrationStatus MigrationCoordinator::status_of(const MigrationRecord& r) const {
  MigrationStatus s;
  s.id = r.id;
  s.batch_id = r.batch_id;
  s.shard = r.shard;
  s.source = r.source;
  s.target = r.target;
  s.stage = r.stage;
  s.queued = !r.started && !migration_stage_terminal(r.stage);
  s.paused = r.paused;
  s.cancel_requested = r.cancel_requested;
  s.bandwidth_bytes_per_s = r.bandwidth_bytes_per_s;
  s.started_at_ms = r.created_ms;
  s.finished_at_ms = r.finished_ms;
  s.stage_ms.assign(r.stage_ms.begin(), r.stage_ms.end());
  s.verify_mismatches = r.verify_mismatches;
  s.bytes_freed = r.bytes_freed;
  s.error = r.error;
  MigrationProgress& p = s.progress;
  p.bytes_total = r.bytes_total;
  p.keys_total = r.keys_total;
  p.bytes_done = r.stage > MigrationStage::kTransfer ? r.bytes_done : 0;
  const auto live = live_.find(r.id);
  if (r.stage == MigrationStage::kTransfer && live != live_.end()) {
    p.bytes_done = std::min(live->second.bytes_done, std::max(r.bytes_total, live->second.bytes_done));
    p.rate_bytes_per_s = live->second.rate;
  }
  if (r.stage == MigrationStage::kFailed || r.stage == MigrationStage::kCancelled) {
    p.bytes_done = 0;
  }
  // The total is the shard's size when the move was planned; the stream
  // (the state at its capture, with framing) may come out larger.
  p.bytes_total = std::max(p.bytes_total, p.bytes_done);
  const double fraction =
      p.bytes_total == 0 ? (r.stage > MigrationStage::kTransfer ? 1.0 : 0.0)
                         : std::min(1.0, static_cast<double>(p.bytes_done) /
                                             static_cast<double>(p.bytes_total));
  p.keys_done = static_cast<std::uint64_t>(fraction * static_cast<double>(p.keys_total));
  if (r.stage == MigrationStage::kTransfer) {
    p.percent = stage_floor(MigrationStage::kTransfer) + 80.0 * fraction;
    if (p.rate_bytes_per_s > 0 && p.bytes_total > p.bytes_done) {
      p.eta_s = static_cast<double>(p.bytes_total - p.bytes_done) / p.rate_bytes_per_s;
    }
  } else if (r.stage == MigrationStage::kFailed || r.stage == MigrationStage::kCancelled) {
    p.percent = 0;
  } else {
    p.percent = stage_floor(r.stage);
  }
  return s;
}

std::string MigrationCoordinator::metrics_text(const ClusterMetadata& view) const {
  std::map<MigrationStage, std::uint64_t> by_stage;
  std::uint64_t in_flight = 0, queued = 0, bytes = 0, keys = 0, mismatches = 0, rollbacks = 0;
  std::array<std::uint64_t, kMigrationStages> stage_ms{};
  for (const auto& [key, rec] : view.records_in(kMigrationNamespace)) {
    Result<MigrationRecord> r = decode_migration_record(rec.value);
    if (!r.is_ok()) continue;
    ++by_stage[r->stage];
    if (!migration_stage_terminal(r->stage)) (r->started ? in_flight : queued) += 1;
    if (r->stage >= MigrationStage::kVerify && r->stage <= MigrationStage::kDone) {
      bytes += r->bytes_done;
      keys += r->keys_total;
    }
    mismatches += r->verify_mismatches;
    rollbacks += r->rolling_back ? 1 : 0;
    for (std::size_t i = 0; i < kMigrationStages; ++i) stage_ms[i] += r->stage_ms[i];
  }
  std::string out;
  out += "# TYPE nodenomad_migrations gauge\n";
  for (std::uint8_t v = 1; v <= 8; ++v) {
    const auto stage = static_cast<MigrationStage>(v);
    out += fmt::format("nodenomad_migrations{{stage=\"{}\"}} {}\n", migration_stage_name(stage),
                       by_stage[stage]);
  }
  out += fmt::format(
      "# TYPE nodenomad_migrations_in_flight gauge\nnodenomad_migrations_in_flight {}\n"
      "# TYPE nodenomad_migrations_queued gauge\nnodenomad_migrations_queued {}\n"
      "# TYPE nodenomad_migration_bytes_moved_total counter\n"
      "nodenomad_migration_bytes_moved_total {}\n"
      "# TYPE nodenomad_migration_keys_moved_total counter\n"
      "nodenomad_migration_keys_moved_total {}\n"
      "# TYPE nodenomad_migration_verify_mismatches_total counter\n"
      "nodenomad_migration_verify_mismatches_total {}\n"
      "# TYPE nodenomad_migration_rollbacks_total counter\n"
      "nodenomad_migration_rollbacks_total {}\n"
      "# TYPE nodenomad_migration_stage_seconds_total counter\n",
      in_flight, queued, bytes, keys, mismatches, rollbacks);
  for (std::size_t i = 0; i < kMigrationStages; ++i) {
    out += fmt::format("nodenomad_migration_stage_seconds_total{{stage=\"{}\"}} {:.3f}\n",
                       migration_stage_name(static_cast<MigrationStage>(i + 1)),
                       static_cast<double>(stage_ms[i]) / 1000.0);
  }
  return out;
}

}  // namespace nodenomad::node
