// The default simulated workload: a random mix of set, get, remove and
// compare-and-set over a few keys.
#include <fmt/format.h>

#include <map>

#include "nodenomad/assert.hpp"
#include "nodenomad/testing/sim_workload.hpp"

namespace nodenomad::testing {
namespace {

class RandomKvWorkload final : public SimWorkload {
 public:
  explicit RandomKvWorkload(const RandomKvMix& mix) : mix_(mix) {
    NN_ASSERT(mix_.key_count > 0, "a workload needs at least one key");
    total_weight_ = mix_.set_weight + mix_.get_weight + mix_.remove_weight +
                    mix_.compare_and_set_weight;
    NN_ASSERT(total_weight_ > 0, "a workload needs some operation weight");
  }

  std::optional<KvOp> next_op(ClientId client, Rng& rng) override {
    const std::string key = key_name(static_cast<std::uint32_t>(rng.uniform(mix_.key_count)));
    std::uint64_t dice = rng.uniform(total_weight_);
    if (dice < mix_.set_weight) return KvOp::set(key, next_value(client));
    dice -= mix_.set_weight;
    if (dice < mix_.get_weight) return KvOp::get(key);
    dice -= mix_.get_weight;
    const std::uint64_t seen = last_seen_[{client, key}];
    if (dice < mix_.remove_weight) {
      // Now and then a conditional delete on the version last seen.
      if (seen != 0 && rng.chance(0.3)) return KvOp::remove(key, seen);
      return KvOp::remove(key);
    }
    // Compare-and-set: on the version this client last saw, or "only if
    // absent" (0), or now and then a version that is probably stale.
    std::uint64_t expected = seen;
    if (rng.chance(0.2)) expected = rng.uniform(seen + 3);
    if (rng.chance(0.1)) return KvOp::remove(key, expected);
    return KvOp::set(key, next_value(client), expected);
  }

  void on_complete(ClientId client, const KvOp& op, Completion completion,
                   const KvResult* result) override {
    if (completion != Completion::kOk || result == nullptr) return;
    std::uint64_t& seen = last_seen_[{client, op.key}];
    switch (result->kind) {
      case KvResultKind::kWritten:
      case KvResultKind::kFound:
      case KvResultKind::kVersionMismatch: seen = result->version; break;
      case KvResultKind::kNotFound: seen = 0; break;
      case KvResultKind::kRemoved: seen = 0; break;
    }
  }

  std::vector<std::string> keys() const override {
    std::vector<std::string> out;
    for (std::uint32_t i = 0; i < mix_.key_count; ++i) out.push_back(key_name(i));
    return out;
  }

 private:
  static std::string key_name(std::uint32_t i) { return fmt::format("k{}", i); }

  // Unique values, so a read names the one write it saw.
  std::string next_value(ClientId client) {
    std::string v = fmt::format("{}.{}", client, ++values_);
    if (v.size() < mix_.value_bytes) v.append(mix_.value_bytes - v.size(), '.');
    return v;
  }

  RandomKvMix mix_;
  std::uint64_t total_weight_ = 0;
  std::uint64_t values_ = 0;
  std::map<std::pair<ClientId, std::string>, std::uint64_t> last_seen_;
};

}  // namespace

std::unique_ptr<SimWorkload> make_random_kv_workload(const RandomKvMix& mix) {
  return std::make_unique<RandomKvWorkload>(mix);
}

}  // namespace nodenomad::testing
