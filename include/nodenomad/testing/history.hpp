// History: what clients did to a NodeNomad key-value store, as the input of
// the linearizability checker (nodenomad/testing/linearizability.hpp).
//
// An operation is one client request on one key: invoked, then completed
// exactly once as ok (with what the server answered), fail (certainly not
// applied) or unknown (may have taken effect at any time after its invoke;
// it never completes). An operation still pending when the history is checked
// counts as unknown. docs/linearizability.md maps every HTTP answer of
// API.md onto these outcomes; in short:
//   - ok:      200, 404 on a get, and 412 version_mismatch (a compare-and-set
//              that lost is an ok answer that observed the current version).
//   - fail:    503 unavailable and every 4xx other than 404/412: the request
//              was certainly not applied. A failed operation is dropped.
//   - unknown: 504 timeout, a broken connection, a client that gave up.
//
// Time is logical: every invoke and every completion takes the next number
// of one counter, so "A completed before B was invoked" is exactly
// "A.complete_time < B.invoke_time". Call invoke() before the request leaves
// and complete_*() after the answer arrived, never the other way round, or
// the history claims an order the store never promised.
//
// Thread safety: History is a value with no locking; build it by hand in
// tests or copy it out of a HistoryRecorder. HistoryRecorder is safe to call
// from any number of client threads at once (one internal mutex, held only
// to append an event; never across a callback).
//
// Contracts: completing an id that invoke() did not hand out, or completing
// an operation twice, is a programmer error (NN_ASSERT), as is recording more
// than the history's operation limit. Whether each answer fits its operation
// (a get cannot answer "written") is checked by validate(), which the checker
// runs first.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/status.hpp"

namespace nodenomad::testing {

using ClientId = std::uint64_t;
using OpId = std::uint64_t;  // index of the operation in its History
using LogicalTime = std::uint64_t;

// "No version was reported": real versions start at 1 (API.md).
inline constexpr std::uint64_t kVersionNotReported = 0;
// The default bound on the operations one History or HistoryRecorder holds.
inline constexpr std::size_t kDefaultMaxHistoryOperations = 10'000'000;

enum class KvOpKind : std::uint8_t {
  kSet,     // PUT: value, optional if_version (0 = only if absent)
  kGet,     // GET (linearizable consistency)
  kRemove,  // DELETE: optional if_version
  kExpire,  // a TTL expiry: removes the key only if it is still at if_version
};

struct KvOp {
  KvOpKind kind = KvOpKind::kGet;
  std::string key;
  std::string value;                        // kSet only
  std::optional<std::uint64_t> if_version;  // kSet, kRemove; always set for kExpire

  static KvOp set(std::string key, std::string value,
                  std::optional<std::uint64_t> if_version = std::nullopt);
  static KvOp get(std::string key);
  static KvOp remove(std::string key, std::optional<std::uint64_t> if_version = std::nullopt);
  static KvOp expire(std::string key, std::uint64_t version);
};

enum class KvResultKind : std::uint8_t {
  kWritten,          // kSet: 200 with the new `version` (or kVersionNotReported)
  kFound,            // kGet: 200 with `value` and `version` (or kVersionNotReported)
  kNotFound,         // kGet: 404
  kRemoved,          // kRemove, kExpire: 200 with `deleted`
  kVersionMismatch,  // kSet, kRemove with if_version: 412 with `version` = current_version
};

// What an ok operation observed. `version` means the new version (kWritten),
// the version read (kFound) or the key's current version, 0 if absent
// (kVersionMismatch).
struct KvResult {
  KvResultKind kind = KvResultKind::kNotFound;
  std::string value;
  std::uint64_t version = kVersionNotReported;
  bool deleted = false;

  static KvResult written(std::uint64_t version = kVersionNotReported);
  static KvResult found(std::string value, std::uint64_t version = kVersionNotReported);
  static KvResult not_found();
  static KvResult removed(bool deleted);
  static KvResult version_mismatch(std::uint64_t current_version);
};

enum class Completion : std::uint8_t { kPending, kOk, kFail, kUnknown };

struct Operation {
  OpId id = 0;
  ClientId client = 0;
  KvOp op;
  Completion completion = Completion::kPending;
  KvResult result;  // meaningful only when completion == kOk
  LogicalTime invoke_time = 0;
  LogicalTime complete_time = 0;  // 0 while pending; the give-up time for kUnknown
};

class History {
 public:
  explicit History(std::size_t max_operations = kDefaultMaxHistoryOperations)
      : max_operations_(max_operations) {}

  OpId invoke(ClientId client, KvOp op);
  void complete_ok(OpId id, KvResult result);
  void complete_fail(OpId id);
  void complete_unknown(OpId id);

  const std::vector<Operation>& operations() const { return operations_; }
  const Operation& operation(OpId id) const;
  std::size_t size() const { return operations_.size(); }

  // Replaces the answer of a completed-ok operation: lets tests take a good
  // history and break it on purpose.
  void rewrite_result(OpId id, KvResult result);

  // kInvalidArgument naming the first operation whose answer does not fit
  // its kind (e.g. a get answered kWritten, a mismatch without if_version,
  // an expire without a version, an empty key).
  Status validate() const;

 private:
  Operation& pending(OpId id);
  void complete(OpId id, Completion completion, KvResult result);

  std::vector<Operation> operations_;
  LogicalTime next_time_ = 1;
  std::size_t max_operations_;
};

class HistoryRecorder {
 public:
  explicit HistoryRecorder(std::size_t max_operations = kDefaultMaxHistoryOperations)
      : history_(max_operations) {}

  OpId invoke(ClientId client, KvOp op);
  void complete_ok(OpId id, KvResult result);
  void complete_fail(OpId id);
  void complete_unknown(OpId id);

  // A copy of everything recorded so far; operations still in flight stay
  // pending in the copy (and count as unknown if it is checked).
  History snapshot() const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  History history_;
};

// Short, printable forms for explanations and test logs; keys and values are
// escaped and cut to a few dozen bytes.
std::string to_string(const KvOp& op);
std::string to_string(const KvResult& result);
// "#12 c3 set(k1, \"a\") -> written v4 [t 17..20]"
std::string to_string(const Operation& operation);
std::string printable_bytes(std::string_view bytes);

}  // namespace nodenomad::testing
