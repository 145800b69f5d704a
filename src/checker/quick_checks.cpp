#include "checker/quick_checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "nodenomad/assert.hpp"

namespace nodenomad::testing::detail {

namespace {

// Did this operation (possibly) write its value?
bool may_have_written(const ModelOp& op) {
  return op.kind == KvOpKind::kSet &&
         (!op.outcome_known || op.result_kind == KvResultKind::kWritten);
}

std::optional<QuickViolation> unwritten_read(const KeyPartition& part) {
  // The earliest invoke of a write of each value.
  std::vector<LogicalTime> first_write(part.values.size(), kNever);
  for (std::size_t i = 0; i < part.ops.size(); ++i) {
    if (!may_have_written(part.ops[i])) continue;
    LogicalTime& first = first_write[part.ops[i].value];
    first = std::min(first, part.invoke_times[i]);
  }
  for (std::size_t i = 0; i < part.ops.size(); ++i) {
    const ModelOp& op = part.ops[i];
    if (!op.outcome_known || op.result_kind != KvResultKind::kFound) continue;
    if (first_write[op.result_value] < part.complete_times[i]) continue;
    return QuickViolation{
        i, std::nullopt,
        fmt::format("#{} read {}, which no write of the key had even begun to write before the "
                    "read completed",
                    op.id, printable_bytes(part.values[op.result_value]))};
  }
  return std::nullopt;
}

// The version an ok operation shows the key reached (0: none shown). A live
// key's version is the highest it ever had, so this bounds every later one.
std::uint64_t version_shown(const ModelOp& op) {
  if (!op.outcome_known) return 0;
  switch (op.result_kind) {
    case KvResultKind::kWritten:
      if (op.result_version != kVersionNotReported) return op.result_version;
      return op.has_if_version && op.if_version > 0 ? op.if_version + 1 : 0;
    case KvResultKind::kFound:
    case KvResultKind::kVersionMismatch:
      return op.result_version;
    case KvResultKind::kRemoved:
      return op.result_deleted && op.has_if_version ? op.if_version : 0;
    case KvResultKind::kNotFound:
      return 0;
  }
  NN_UNREACHABLE("unknown KvResultKind ", static_cast<int>(op.result_kind));
}

// What an ok operation needs of the highest version any operation before it
// showed: `version` >= it, or > it when `strict` (a write lands above).
struct VersionNeed {
  std::uint64_t version = 0;
  bool strict = false;
};

std::optional<VersionNeed> version_need(const ModelOp& op) {
  if (!op.outcome_known) return std::nullopt;
  switch (op.result_kind) {
    case KvResultKind::kWritten:
      if (op.result_version != kVersionNotReported) return VersionNeed{op.result_version, true};
      if (op.has_if_version && op.if_version > 0) return VersionNeed{op.if_version, false};
      return std::nullopt;
    case KvResultKind::kFound:
    case KvResultKind::kVersionMismatch:
      if (op.result_version == kVersionNotReported) return std::nullopt;
      return VersionNeed{op.result_version, false};
    case KvResultKind::kRemoved:
      if (op.result_deleted && op.has_if_version) return VersionNeed{op.if_version, false};
      return std::nullopt;
    case KvResultKind::kNotFound:
      return std::nullopt;
  }
  NN_UNREACHABLE("unknown KvResultKind ", static_cast<int>(op.result_kind));
}

std::optional<QuickViolation> version_regression(const KeyPartition& part) {
  // Operations that show a version, by completion time.
  std::vector<std::size_t> shown;
  for (std::size_t i = 0; i < part.ops.size(); ++i) {
    if (version_shown(part.ops[i]) > 0) shown.push_back(i);
  }
  std::sort(shown.begin(), shown.end(), [&](std::size_t a, std::size_t b) {
    return part.complete_times[a] < part.complete_times[b];
  });
  std::size_t next_shown = 0;
  std::uint64_t highest = 0;
  std::size_t highest_op = 0;
  // part.ops is in invoke order: sweep invokes, folding in completions first.
  for (std::size_t i = 0; i < part.ops.size(); ++i) {
    for (;
         next_shown < shown.size() && part.complete_times[shown[next_shown]] < part.invoke_times[i];
         ++next_shown) {
      const std::uint64_t version = version_shown(part.ops[shown[next_shown]]);
      if (version > highest) {
        highest = version;
        highest_op = shown[next_shown];
      }
    }
    const std::optional<VersionNeed> need = version_need(part.ops[i]);
    if (!need || highest == 0) continue;
    if (need->strict ? need->version > highest : need->version >= highest) continue;
    return QuickViolation{
        i, highest_op,
        fmt::format("#{} {} version {}, but #{} had already shown version {} and completed "
                    "before #{} began; a key's versions never go back",
                    part.ops[i].id, need->strict ? "wrote" : "found the key at", need->version,
                    part.ops[highest_op].id, highest, part.ops[i].id)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<QuickViolation> find_quick_violation(const KeyPartition& part) {
  if (auto violation = unwritten_read(part)) return violation;
  return version_regression(part);
}

}  // namespace nodenomad::testing::detail
