// KvCommand: the only way a StorageEngine's state changes, and the bytes that
// carry a change through a write-ahead log or a Raft log.
//
// Every mutation (set, remove, expire) is encoded as a KvCommand, logged (the
// engine's own WAL in standalone mode, the Raft log in replicated mode) and
// applied in log order. A command carries everything apply needs, including
// `issued_at`, the proposer's wall time: apply never reads a clock, so every
// replica that applies the same commands reaches the same state and answers
// the same WriteResult.
//
// Command encoding (integers little endian; drawn here because the bytes are
// public: they travel in Raft entries between nodes):
//
//   offset 0          1          2          3                    11
//          +----------+----------+----------+--------------------+-----------
//          | format   | type     | flags    | issued_at_ms (i64) | body ...
//          | (u8 = 1) | (u8)     | (u8)     | ms since the epoch |
//          +----------+----------+----------+--------------------+-----------
//
//   flags: bit 0 = has expiry, bit 1 = has if_version; other bits are zero.
//   body, by type:
//     kSet    (1): [if_version u64]? [expiry_ms i64]? [key_len u32][key]
//                  [value_len u32][value]
//     kRemove (2): [if_version u64]? [key_len u32][key]       (no expiry flag)
//     kExpire (3): [count u32] then count x ([version u64][key_len u32][key])
//                  (no flags)
//   Nothing may follow the body.
//
// decode_kv_command() reads untrusted bytes (a log read back from disk, a
// peer, a fuzzer): every length is checked against the bytes that remain
// before anything is read or allocated, so hostile input answers kCorruption,
// never a crash, and never allocates more than the input's size. Limits on
// key and value sizes are the engine's business (apply refuses them with a
// response); the codec only checks structure.
//
// Thread safety: free functions over values; safe from any thread.
// Ownership: a decoded KvCommand's string_views point into the bytes given to
// decode_kv_command(), which must outlive it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad {

enum class KvCommandType : std::uint8_t {
  kSet = 1,     // write a value (optionally only at a given version)
  kRemove = 2,  // delete a key (optionally only at a given version)
  kExpire = 3,  // remove keys whose TTL has passed, if still at the given version
};

inline constexpr std::uint8_t kKvCommandFormat = 1;
// The most expiry targets one kExpire command may carry (a decode bound; the
// engine proposes batches of at most StorageOptions::max_expire_batch_keys).
inline constexpr std::uint32_t kMaxExpireTargetsPerCommand = 65536;

// One key of a kExpire command: removed only if the key is still at `version`
// and its expiry is at or before the command's issued_at, so a write that
// raced with the expiry (a new version, a new TTL) is never lost.
struct ExpireTarget {
  std::string_view key;
  std::uint64_t version = 0;
  bool operator==(const ExpireTarget&) const = default;
};

struct KvCommand {
  KvCommandType type = KvCommandType::kSet;
  // The proposer's wall time: apply's only notion of "now" (to hide expired
  // keys from compare-and-set and to decide which expiry targets are due).
  WallTime issued_at{};
  std::string_view key;                      // kSet, kRemove
  std::string_view value;                    // kSet
  std::optional<WallTime> expiry;            // kSet: absolute expiry; none = never
  std::optional<std::uint64_t> if_version;   // kSet, kRemove: 0 = only if absent
  std::vector<ExpireTarget> expire_targets;  // kExpire

  bool operator==(const KvCommand&) const = default;
};

// Appends the encoding of `command` to `out`. Precondition: key and value
// sizes fit in 32 bits and at most kMaxExpireTargetsPerCommand targets.
void encode_kv_command(const KvCommand& command, std::string& out);
std::string encode_kv_command(const KvCommand& command);

// kCorruption (naming the field and offset) for anything that is not exactly
// one well-formed command.
Result<KvCommand> decode_kv_command(std::string_view bytes);

// The answer to one applied command. What the HTTP API needs is here: the new
// version after a write, the current version after a compare-and-set lost
// (412 "current_version"), whether a remove deleted anything.
struct WriteResult {
  // kOk; kVersionMismatch (if_version did not match); kInvalidArgument (a
  // limit, the message names it and the size); kBusy (queue full, not
  // logged); kFailed (the engine is failed; outcome of this write unknown if
  // it was already logged); kNotSupported (wrong mode).
  Status status;
  std::uint64_t version = 0;          // kSet: the new version; kRemove: the version removed
  std::uint64_t current_version = 0;  // kVersionMismatch: the key's version (0 = absent)
  bool deleted = false;               // kRemove: a live key was removed
  std::vector<std::string> expired_keys;  // kExpire: the keys actually removed

  bool ok() const { return status.is_ok(); }
  // A result that carries only `status` (a refusal).
  static WriteResult refused(Status status) {
    WriteResult result;
    result.status = std::move(status);
    return result;
  }
};

// Response encoding (the bytes StateMachine::apply answers):
//   [format u8 = 1][code u8][version u64][current_version u64][deleted u8]
//   [message_len u32][message][expired_count u32] expired_count x [key_len u32][key]
std::string encode_write_result(const WriteResult& result);
Result<WriteResult> decode_write_result(std::string_view bytes);

}  // namespace nodenomad
