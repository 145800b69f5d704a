// Direct proofs that a key's history is not linearizable, found in
// O(n log n) before any search. They catch the anomalies bugs most often
// produce, with an explanation that names the two operations involved, and
// they stay instant where the search would be slow (many unknown outcomes).
// Each rule is a necessary condition of the model in kv_model.hpp:
//
//   - A read returns a value some write of the key (ok or unknown outcome,
//     not a compare-and-set that lost) had invoked before the read
//     completed.
//   - Versions never go back. A live key's version is the highest it ever
//     had (writes add one, a re-created key starts above every old version),
//     so if A completed before B began, any version B finds the key at is
//     >= any version A found or made, and a version B writes is > it.
//
// Passing these checks proves nothing; the search decides.
//
// Thread safety: pure function.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "checker/partition.hpp"

namespace nodenomad::testing::detail {

struct QuickViolation {
  std::size_t op = 0;                  // index in part.ops whose answer is impossible
  std::optional<std::size_t> witness;  // the earlier operation that shows it
  std::string reason;                  // one sentence, operations named "#<id>"
};

std::optional<QuickViolation> find_quick_violation(const KeyPartition& part);

}  // namespace nodenomad::testing::detail
