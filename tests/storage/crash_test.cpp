// Crash-point enumeration: a short mixed workload runs on the
// fault-injecting file system, which loses power after k mutating calls, for
// every k; after the crash the engine must reopen with every acknowledged
// write intact and nothing half-applied: its state equals the model after a
// prefix of the issued operations that includes every acknowledged one.
#include <set>

#include <catch2/catch.hpp>

#include "nodenomad/logging.hpp"
#include "nodenomad/rng.hpp"
#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage_test::dump_engine;
using storage_test::Model;
using storage_test::ModelResult;
using storage_test::ModelState;
using storage_test::test_options;
using testing::CrashOptions;
using testing::FaultInjectingFileSystem;

enum class OpKind { kSet, kSetTtl, kCas, kRemove, kRemoveIf, kExpire, kSnapshot, kAdvance };

struct Op {
  OpKind kind = OpKind::kSet;
  std::string key;
  std::string value;
  std::uint64_t version = 0;  // kCas, kRemoveIf
  std::int64_t ms = 0;        // kSetTtl: time to live; kAdvance: clock step
};

constexpr std::size_t kExpireBatchKeys = 2;

std::vector<Op> make_workload(Rng& rng, std::size_t count) {
  const std::vector<std::string> keys = {"a", "b", "c", std::string("\0d", 2)};
  std::vector<Op> ops;
  for (std::size_t i = 0; i < count; ++i) {
    Op op;
    op.key = keys[rng.uniform(keys.size())];
    op.value = "v" + std::to_string(i) + std::string(rng.uniform(40), 'x');
    op.version = rng.uniform(5);
    const std::uint64_t pick = rng.uniform(100);
    if (pick < 30) {
      op.kind = OpKind::kSet;
    } else if (pick < 42) {
      op.kind = OpKind::kSetTtl;
      op.ms = 1 + static_cast<std::int64_t>(rng.uniform(3000));
    } else if (pick < 57) {
      op.kind = OpKind::kCas;
    } else if (pick < 67) {
      op.kind = OpKind::kRemove;
    } else if (pick < 77) {
      op.kind = OpKind::kRemoveIf;
    } else if (pick < 84) {
      op.kind = OpKind::kExpire;
    } else if (pick < 91) {
      op.kind = OpKind::kSnapshot;
    } else {
      op.kind = OpKind::kAdvance;
      op.ms = static_cast<std::int64_t>(rng.uniform(2000));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

// Applies `op` to the model at `now_ms`; the answer the engine must give.
ModelResult apply_to_model(Model& model, const Op& op, std::int64_t now_ms,
                           std::size_t* expired = nullptr) {
  switch (op.kind) {
    case OpKind::kSet: return model.set(op.key, op.value, now_ms, std::nullopt, std::nullopt);
    case OpKind::kSetTtl: return model.set(op.key, op.value, now_ms, now_ms + op.ms, std::nullopt);
    case OpKind::kCas: return model.set(op.key, op.value, now_ms, std::nullopt, op.version);
    case OpKind::kRemove: return model.remove(op.key, now_ms, std::nullopt);
    case OpKind::kRemoveIf: return model.remove(op.key, now_ms, op.version);
    case OpKind::kExpire: {
      const std::size_t n = model.expire(now_ms, kExpireBatchKeys);
      if (expired != nullptr) *expired = n;
      return {};
    }
    case OpKind::kSnapshot:
    case OpKind::kAdvance: return {};
  }
  return {};
}

// Runs `op` on the engine; false when the engine refused it for a failure
// (its outcome is then unknown and the run stops).
bool run_on_engine(StorageEngine& engine, ManualClock& clock, const Op& op, ModelResult& out,
                   std::size_t& expired) {
  const WallTime now = clock.wall_now();
  WriteResult r;
  switch (op.kind) {
    case OpKind::kSet: r = engine.set(op.key, op.value); break;
    case OpKind::kSetTtl:
      r = engine.set(op.key, op.value, {now + std::chrono::milliseconds(op.ms), std::nullopt});
      break;
    case OpKind::kCas: r = engine.compare_and_set(op.key, op.value, op.version); break;
    case OpKind::kRemove: r = engine.remove(op.key); break;
    case OpKind::kRemoveIf: r = engine.remove_if_version(op.key, op.version); break;
    case OpKind::kExpire: r = engine.expire_due(now, kExpireBatchKeys); break;
    case OpKind::kSnapshot: return engine.snapshot().is_ok();
    case OpKind::kAdvance: clock.advance(std::chrono::milliseconds(op.ms)); return true;
  }
  if (!r.ok() && !r.status.is(StatusCode::kVersionMismatch)) {
    REQUIRE(r.status.is(StatusCode::kFailed));  // the only refusal a dying disk may cause
    return false;
  }
  out = ModelResult{r.status.code(), r.version, r.current_version, r.deleted};
  expired = r.expired_keys.size();
  return true;
}

struct CrashRun {
  std::size_t acknowledged = 0;  // operations answered definitely
  std::size_t issued = 0;        // including the one that failed, if any
};

CrashRun run_workload(ManualClock& clock, const StorageOptions& options,
                      const std::vector<Op>& ops) {
  CrashRun run;
  auto opened = StorageEngine::open(options);
  if (!opened.is_ok()) return run;  // the disk died while opening
  auto& engine = **opened;
  Model model;
  for (const Op& op : ops) {
    ++run.issued;
    ModelResult got;
    std::size_t expired = 0;
    const std::int64_t now_ms = clock.wall_now().time_since_epoch().count();
    if (!run_on_engine(engine, clock, op, got, expired)) break;
    std::size_t want_expired = 0;
    const ModelResult want = apply_to_model(model, op, now_ms, &want_expired);
    INFO("operation " << run.issued - 1);
    CHECK(got.code == want.code);
    CHECK(got.version == want.version);
    CHECK(got.current_version == want.current_version);
    CHECK(got.deleted == want.deleted);
    CHECK(expired == want_expired);
    ++run.acknowledged;
  }
  return run;
}

// The model state after each prefix of `ops` (index p: after p operations).
std::vector<ModelState> prefix_states(const std::vector<Op>& ops, std::int64_t start_ms) {
  std::vector<ModelState> states;
  Model model;
  std::int64_t now_ms = start_ms;
  states.push_back(model.state());
  for (const Op& op : ops) {
    (void)apply_to_model(model, op, now_ms);
    if (op.kind == OpKind::kAdvance) now_ms += op.ms;
    states.push_back(model.state());
  }
  return states;
}

// Returns the number of distinct prefixes that crash points recovered to.
std::size_t enumerate_crash_points(SyncPolicy policy, bool tear, std::uint64_t seed) {
  // Hundreds of simulated power losses log hundreds of expected errors.
  set_log_sink([](LogLevel, std::string_view, std::string_view) {});
  struct RestoreSink {
    ~RestoreSink() { set_log_sink({}); }
  } restore_sink;
  Rng rng(seed);
  const std::vector<Op> ops = make_workload(rng, 60);
  const std::int64_t start_ms = ManualClock().wall_now().time_since_epoch().count();
  const std::vector<ModelState> states = prefix_states(ops, start_ms);
  std::uint64_t total_ops = 0;
  {
    FaultInjectingFileSystem fs(seed);
    ManualClock clock;
    StorageOptions options = test_options(fs, clock);
    options.sync_policy = policy;
    const CrashRun run = run_workload(clock, options, ops);
    REQUIRE(run.acknowledged == ops.size());
    total_ops = fs.mutating_op_count();
  }
  std::set<std::size_t> recovered_prefixes;
  for (std::uint64_t k = 0; k <= total_ops; ++k) {
    CAPTURE(seed, k, total_ops, tear, static_cast<int>(policy));
    FaultInjectingFileSystem fs(seed * 1000 + k);
    ManualClock clock;
    StorageOptions options = test_options(fs, clock);
    options.sync_policy = policy;
    fs.die_after_ops(k);
    const CrashRun run = run_workload(clock, options, ops);
    fs.crash(CrashOptions{.tear_unsynced_tail = tear});
    auto reopened = StorageEngine::open(options);
    INFO(reopened.status().to_string());
    REQUIRE(reopened.is_ok());
    const ModelState state = dump_engine(**reopened);
    // kNone promises order, not durability: any prefix of what was issued.
    const std::size_t lowest = policy == SyncPolicy::kNone ? 0 : run.acknowledged;
    bool matched = false;
    for (std::size_t p = lowest; p <= run.issued && !matched; ++p) {
      if (state == states[p]) {
        matched = true;
        recovered_prefixes.insert(p);
      }
    }
    CAPTURE(run.acknowledged, run.issued);
    CHECK(matched);
    // Recovery is repeatable and leaves a working engine.
    REQUIRE((*reopened)->set("after", "crash").ok());
    reopened->reset();
    REQUIRE(StorageEngine::open(options).is_ok());
  }
  return recovered_prefixes.size();
}

// Each case runs several workloads; the count of distinct recovered
// prefixes shows that the crash points really cut the workload everywhere.
constexpr std::uint64_t kWorkloadsPerCase = 4;

TEST_CASE("crash at every mutating call keeps every acknowledged write", "[storage][crash]") {
  const std::uint64_t seed = storage_test::test_seed(2024);
  for (std::uint64_t w = 0; w < kWorkloadsPerCase; ++w) {
    CHECK(enumerate_crash_points(SyncPolicy::kEveryWrite, /*tear=*/false, seed + 2 * w) > 30);
    CHECK(enumerate_crash_points(SyncPolicy::kGroupCommit, /*tear=*/false, seed + 2 * w + 1) > 30);
  }
}

TEST_CASE("crash at every mutating call with torn unsynced tails", "[storage][crash]") {
  const std::uint64_t seed = storage_test::test_seed(4202);
  for (std::uint64_t w = 0; w < kWorkloadsPerCase; ++w) {
    CHECK(enumerate_crash_points(SyncPolicy::kEveryWrite, /*tear=*/true, seed + 2 * w) > 30);
    CHECK(enumerate_crash_points(SyncPolicy::kGroupCommit, /*tear=*/true, seed + 2 * w + 1) > 30);
  }
}

TEST_CASE("crash at every mutating call under kNone keeps a prefix", "[storage][crash]") {
  const std::uint64_t seed = storage_test::test_seed(99);
  for (std::uint64_t w = 0; w < kWorkloadsPerCase; ++w) {
    // kNone syncs only at snapshots and the clean close, so fewer prefixes.
    CHECK(enumerate_crash_points(SyncPolicy::kNone, /*tear=*/false, seed + 2 * w) > 1);
    CHECK(enumerate_crash_points(SyncPolicy::kNone, /*tear=*/true, seed + 2 * w + 1) > 1);
  }
}

}  // namespace
}  // namespace nodenomad
