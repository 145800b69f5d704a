// Splits a History into one independent search problem per key.
//
// Keys do not interact in NodeNomad's model (no multi-key operation exists),
// so a history is linearizable iff each key's sub-history is (locality,
// Herlihy & Wing 1990). Each part keeps only what can constrain the search:
//   - failed operations are dropped (they certainly did not take effect);
//   - gets with an unknown outcome are dropped (a read changes nothing and
//     observed nothing);
//   - other unknown or still-pending operations stay as "maybe" operations:
//     they may take effect once, at any time after their invoke, or never.
// Values that no ok read returned are indistinguishable to the model (it
// compares values only with what reads returned); the search merges them
// (kUnreadValue) where it compares configurations.
//
// Thread safety: pure functions over values.
#pragma once

#include <string>
#include <vector>

#include "checker/kv_model.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::testing::detail {

// "Never completes": the completion time of a maybe operation.
inline constexpr LogicalTime kNever = ~LogicalTime{0};

struct KeyPartition {
  std::string key;
  // Interned values, indexed by ValueId: [0] is kUnreadValue's placeholder,
  // [1, last_read_value] were returned by ok reads, the rest never were.
  std::vector<std::string> values;
  ValueId last_read_value = 0;
  std::vector<ModelOp> ops;  // in invoke order
  std::vector<LogicalTime> invoke_times;
  std::vector<LogicalTime> complete_times;  // kNever for maybe operations
  // Maybe operations with the same class do the same thing (same kind,
  // if_version and value); 0 for ok operations.
  std::vector<std::uint32_t> maybe_class;
};

// One partition per key of the history (even one whose operations were all
// dropped), in bytewise key order.
// Precondition: history.validate() is ok.
std::vector<KeyPartition> partition_by_key(const History& history);

}  // namespace nodenomad::testing::detail
