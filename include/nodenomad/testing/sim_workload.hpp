// SimWorkload: what the simulated clients ask of the cluster.
//
// The simulator (nodenomad/testing/simulator.hpp) runs a fixed number of
// clients; whenever one is idle it asks the workload for its next operation,
// sends it to the cluster (retrying on other nodes while the request was
// certainly not applied), records invoke and completion in the history, and
// hands the completion back through on_complete(). A host tests its own
// application logic by writing a workload: a bank transfer built on
// compare-and-set, a counter, a lock. The linearizability check of the
// history then comes for free, and check_final() may add the application's
// own end-of-run assertions.
//
// Operations: set, get, remove, and set/remove with if_version
// (compare-and-set). kExpire is not a client operation; TTLs are left out of
// the simulated mix (an expiry needs the leader's clock, which the simulated
// runtime does not drive).
//
// Thread safety: none needed; the simulator calls a workload from its one
// thread. Determinism: a workload must draw randomness only from the Rng it
// is given and must not read clocks, so that a seed replays the run.
// Ownership: the simulator owns the workload for one run.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::testing {

class SimWorkload {
 public:
  virtual ~SimWorkload() = default;

  // The next operation of idle client `client`; nullopt keeps it idle until
  // its next wake-up. The key must be non-empty and at most 1024 bytes.
  virtual std::optional<KvOp> next_op(ClientId client, Rng& rng) = 0;

  // Every completion of an operation the workload issued: `result` is set
  // only for Completion::kOk.
  virtual void on_complete(ClientId client, const KvOp& op, Completion completion,
                           const KvResult* result) {
    (void)client;
    (void)op;
    (void)completion;
    (void)result;
  }

  // The keys the workload may have touched: the simulator compares every
  // node's value of each of them once the cluster has healed.
  virtual std::vector<std::string> keys() const = 0;

  // Application-level checks at the end of a run, over the final history
  // (already found linearizable, or not checked). A non-OK status fails the
  // run with its message.
  virtual Status check_final(const History& history) const {
    (void)history;
    return Status::ok();
  }
};

// The default mix: set / get / remove / compare-and-set (set or remove with
// the version the client last saw, or 0 for "create only if absent") over a
// small key space, so that clients contend. Percentages need not sum to 100:
// they are weights.
struct RandomKvMix {
  std::uint32_t key_count = 4;
  std::uint32_t set_weight = 35;
  std::uint32_t get_weight = 35;
  std::uint32_t remove_weight = 10;
  std::uint32_t compare_and_set_weight = 20;
  std::uint32_t value_bytes = 8;  // values are unique: "<client>.<n>" padded to this
};

std::unique_ptr<SimWorkload> make_random_kv_workload(const RandomKvMix& mix);

}  // namespace nodenomad::testing
