#include "checker/partition.hpp"

#include <limits>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "nodenomad/assert.hpp"

namespace nodenomad::testing::detail {

namespace {

// Builds one key's partition in two passes: the values ok reads returned
// are interned first, so "was this value ever read" is a comparison.
class PartitionBuilder {
 public:
  explicit PartitionBuilder(std::string key) { part_.key = std::move(key); }

  void add(const Operation& operation) { operations_.push_back(&operation); }

  KeyPartition take() && {
    part_.values.emplace_back();  // kUnreadValue: stands for no single value
    for (const Operation* operation : operations_) {
      if (operation->completion == Completion::kOk &&
          operation->result.kind == KvResultKind::kFound) {
        intern(operation->result.value);
      }
    }
    part_.last_read_value = static_cast<ValueId>(part_.values.size() - 1);
    for (const Operation* operation : operations_) append(*operation);
    return std::move(part_);
  }

 private:
  void append(const Operation& operation) {
    ModelOp op;
    op.id = operation.id;
    op.kind = operation.op.kind;
    op.has_if_version = operation.op.if_version.has_value();
    op.if_version = operation.op.if_version.value_or(0);
    if (op.kind == KvOpKind::kSet) op.value = intern(operation.op.value);
    op.outcome_known = operation.completion == Completion::kOk;
    if (op.outcome_known) {
      op.result_kind = operation.result.kind;
      op.result_version = operation.result.version;
      op.result_deleted = operation.result.deleted;
      if (op.result_kind == KvResultKind::kFound) op.result_value = ids_.at(operation.result.value);
    }
    part_.maybe_class.push_back(op.outcome_known ? 0 : maybe_class_of(op));
    part_.ops.push_back(op);
    part_.invoke_times.push_back(operation.invoke_time);
    part_.complete_times.push_back(op.outcome_known ? operation.complete_time : kNever);
  }

  ValueId intern(const std::string& value) {
    const auto [it, inserted] = ids_.try_emplace(value, static_cast<ValueId>(part_.values.size()));
    if (inserted) {
      NN_ASSERT(part_.values.size() < std::numeric_limits<ValueId>::max(),
                "too many distinct values for one key");
      part_.values.push_back(value);
    }
    return it->second;
  }

  // Maybe operations that would do exactly the same thing share a class
  // (values no read returned are all alike).
  std::uint32_t maybe_class_of(const ModelOp& op) {
    const ValueId value = op.value <= part_.last_read_value ? op.value : kUnreadValue;
    const auto key = std::make_tuple(op.kind, op.has_if_version, op.if_version, value);
    const auto [it, inserted] =
        classes_.try_emplace(key, static_cast<std::uint32_t>(classes_.size()));
    return it->second;
  }

  KeyPartition part_;
  std::vector<const Operation*> operations_;
  std::unordered_map<std::string, ValueId> ids_;
  std::map<std::tuple<KvOpKind, bool, std::uint64_t, ValueId>, std::uint32_t> classes_;
};

bool constrains_search(const Operation& operation) {
  switch (operation.completion) {
    case Completion::kOk:
      return true;
    case Completion::kFail:
      return false;
    case Completion::kUnknown:
    case Completion::kPending:
      return operation.op.kind != KvOpKind::kGet;
  }
  NN_UNREACHABLE("unknown Completion ", static_cast<int>(operation.completion));
}

}  // namespace

std::vector<KeyPartition> partition_by_key(const History& history) {
  // std::map orders std::string keys bytewise (char_traits compares as
  // unsigned char), which makes the report order stable everywhere.
  std::map<std::string, PartitionBuilder> builders;
  for (const Operation& operation : history.operations()) {
    auto it = builders.find(operation.op.key);
    if (it == builders.end()) {
      it = builders.emplace(operation.op.key, PartitionBuilder(operation.op.key)).first;
    }
    if (constrains_search(operation)) it->second.add(operation);
  }
  std::vector<KeyPartition> parts;
  parts.reserve(builders.size());
  for (auto& [key, builder] : builders) parts.push_back(std::move(builder).take());
  return parts;
}

}  // namespace nodenomad::testing::detail
