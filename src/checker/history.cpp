#include "nodenomad/testing/history.hpp"

#include <fmt/format.h>

#include <utility>

#include "nodenomad/assert.hpp"

namespace nodenomad::testing {

namespace {

// Keys and values are binary; explanations show at most this many bytes of
// each, so one huge value cannot drown the report.
constexpr std::size_t kMaxPrintedBytes = 40;

std::string_view kind_name(KvOpKind kind) {
  switch (kind) {
    case KvOpKind::kSet:
      return "set";
    case KvOpKind::kGet:
      return "get";
    case KvOpKind::kRemove:
      return "remove";
    case KvOpKind::kExpire:
      return "expire";
  }
  NN_UNREACHABLE("unknown KvOpKind ", static_cast<int>(kind));
}

std::string version_text(std::uint64_t version) {
  return version == kVersionNotReported ? std::string("v?") : fmt::format("v{}", version);
}

// Empty when the answer fits the operation, else what is wrong with it.
std::string answer_problem(const Operation& operation) {
  const KvOp& op = operation.op;
  if (op.key.empty()) return "the key is empty";
  if (op.kind == KvOpKind::kExpire && !op.if_version)
    return "an expire needs the version it removes";
  if (operation.completion != Completion::kOk) return {};
  const KvResultKind kind = operation.result.kind;
  if (kind == KvResultKind::kVersionMismatch) {
    const bool may_mismatch = op.kind == KvOpKind::kSet || op.kind == KvOpKind::kRemove;
    return may_mismatch && op.if_version ? std::string()
                                         : "only a set or remove with if_version can mismatch";
  }
  switch (op.kind) {
    case KvOpKind::kSet:
      return kind == KvResultKind::kWritten ? std::string() : "a set answers written or mismatch";
    case KvOpKind::kGet:
      return kind == KvResultKind::kFound || kind == KvResultKind::kNotFound
                 ? std::string()
                 : "a get answers found or not found";
    case KvOpKind::kRemove:
    case KvOpKind::kExpire:
      return kind == KvResultKind::kRemoved ? std::string() : "a removal answers removed";
  }
  NN_UNREACHABLE("unknown KvOpKind ", static_cast<int>(op.kind));
}

}  // namespace

KvOp KvOp::set(std::string key, std::string value, std::optional<std::uint64_t> if_version) {
  return KvOp{KvOpKind::kSet, std::move(key), std::move(value), if_version};
}
KvOp KvOp::get(std::string key) { return KvOp{KvOpKind::kGet, std::move(key), {}, std::nullopt}; }
KvOp KvOp::remove(std::string key, std::optional<std::uint64_t> if_version) {
  return KvOp{KvOpKind::kRemove, std::move(key), {}, if_version};
}
KvOp KvOp::expire(std::string key, std::uint64_t version) {
  return KvOp{KvOpKind::kExpire, std::move(key), {}, version};
}

KvResult KvResult::written(std::uint64_t version) {
  return KvResult{KvResultKind::kWritten, {}, version, false};
}
KvResult KvResult::found(std::string value, std::uint64_t version) {
  return KvResult{KvResultKind::kFound, std::move(value), version, false};
}
KvResult KvResult::not_found() { return KvResult{KvResultKind::kNotFound, {}, 0, false}; }
KvResult KvResult::removed(bool deleted) {
  return KvResult{KvResultKind::kRemoved, {}, 0, deleted};
}
KvResult KvResult::version_mismatch(std::uint64_t current_version) {
  return KvResult{KvResultKind::kVersionMismatch, {}, current_version, false};
}

OpId History::invoke(ClientId client, KvOp op) {
  NN_ASSERT(operations_.size() < max_operations_, "the history is full at ", max_operations_,
            " operations; build it with a larger limit");
  Operation operation;
  operation.id = operations_.size();
  operation.client = client;
  operation.op = std::move(op);
  operation.invoke_time = next_time_++;
  operations_.push_back(std::move(operation));
  return operations_.back().id;
}

Operation& History::pending(OpId id) {
  NN_ASSERT(id < operations_.size(), "operation #", id, " was never invoked");
  Operation& operation = operations_[id];
  NN_ASSERT(operation.completion == Completion::kPending, "operation #", id, " is completed twice");
  return operation;
}

void History::complete(OpId id, Completion completion, KvResult result) {
  Operation& operation = pending(id);
  operation.completion = completion;
  operation.result = std::move(result);
  operation.complete_time = next_time_++;
}

void History::complete_ok(OpId id, KvResult result) {
  complete(id, Completion::kOk, std::move(result));
}
void History::complete_fail(OpId id) { complete(id, Completion::kFail, {}); }
void History::complete_unknown(OpId id) { complete(id, Completion::kUnknown, {}); }

const Operation& History::operation(OpId id) const {
  NN_ASSERT(id < operations_.size(), "operation #", id, " is not in the history");
  return operations_[id];
}

void History::rewrite_result(OpId id, KvResult result) {
  NN_ASSERT(id < operations_.size(), "operation #", id, " is not in the history");
  NN_ASSERT(operations_[id].completion == Completion::kOk, "only an ok answer can be rewritten");
  operations_[id].result = std::move(result);
}

Status History::validate() const {
  for (const Operation& operation : operations_) {
    const std::string problem = answer_problem(operation);
    if (!problem.empty()) {
      return Status::invalid_argument(
          fmt::format("history: {}: {}", to_string(operation), problem));
    }
  }
  return Status::ok();
}

OpId HistoryRecorder::invoke(ClientId client, KvOp op) {
  const std::lock_guard<std::mutex> lock(mutex_);
  return history_.invoke(client, std::move(op));
}
void HistoryRecorder::complete_ok(OpId id, KvResult result) {
  const std::lock_guard<std::mutex> lock(mutex_);
  history_.complete_ok(id, std::move(result));
}
void HistoryRecorder::complete_fail(OpId id) {
  const std::lock_guard<std::mutex> lock(mutex_);
  history_.complete_fail(id);
}
void HistoryRecorder::complete_unknown(OpId id) {
  const std::lock_guard<std::mutex> lock(mutex_);
  history_.complete_unknown(id);
}
History HistoryRecorder::snapshot() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return history_;
}
std::size_t HistoryRecorder::size() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return history_.size();
}

std::string printable_bytes(std::string_view bytes) {
  std::string out = "\"";
  const std::size_t shown = bytes.size() < kMaxPrintedBytes ? bytes.size() : kMaxPrintedBytes;
  for (std::size_t i = 0; i < shown; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    if (byte == '"' || byte == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(byte));
    } else if (byte >= 0x20 && byte < 0x7f) {
      out.push_back(static_cast<char>(byte));
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  out.push_back('"');
  if (shown < bytes.size()) out += fmt::format("...({} bytes)", bytes.size());
  return out;
}

std::string to_string(const KvOp& op) {
  std::string args = printable_bytes(op.key);
  if (op.kind == KvOpKind::kSet) args += ", " + printable_bytes(op.value);
  if (op.if_version) args += fmt::format(", if_version={}", *op.if_version);
  return fmt::format("{}({})", kind_name(op.kind), args);
}

std::string to_string(const KvResult& result) {
  switch (result.kind) {
    case KvResultKind::kWritten:
      return "written " + version_text(result.version);
    case KvResultKind::kFound:
      return fmt::format("found {} {}", printable_bytes(result.value),
                         version_text(result.version));
    case KvResultKind::kNotFound:
      return "not found";
    case KvResultKind::kRemoved:
      return result.deleted ? "deleted" : "nothing deleted";
    case KvResultKind::kVersionMismatch:
      return fmt::format("version mismatch, current v{}", result.version);
  }
  NN_UNREACHABLE("unknown KvResultKind ", static_cast<int>(result.kind));
}

std::string to_string(const Operation& operation) {
  std::string outcome;
  std::string times;
  switch (operation.completion) {
    case Completion::kOk:
      outcome = to_string(operation.result);
      times = fmt::format("{}..{}", operation.invoke_time, operation.complete_time);
      break;
    case Completion::kFail:
      outcome = "fail";
      times = fmt::format("{}..{}", operation.invoke_time, operation.complete_time);
      break;
    case Completion::kUnknown:
    case Completion::kPending:
      outcome = operation.completion == Completion::kUnknown ? "unknown" : "pending";
      times = fmt::format("{}..", operation.invoke_time);
      break;
  }
  return fmt::format("#{} c{} {} -> {} [t {}]", operation.id, operation.client,
                     to_string(operation.op), outcome, times);
}

}  // namespace nodenomad::testing
