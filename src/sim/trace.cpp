#include "sim/trace.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include "nodenomad/raft/message.hpp"
#include "nodenomad/raft/ready.hpp"

namespace nodenomad::sim {
namespace {

std::string_view code_name(TraceCode code) {
  switch (code) {
    case TraceCode::kTick: return "tick";
    case TraceCode::kSend: return "send";
    case TraceCode::kDeliver: return "deliver";
    case TraceCode::kDrop: return "drop";
    case TraceCode::kReady: return "ready";
    case TraceCode::kPersisted: return "persisted";
    case TraceCode::kRole: return "role";
    case TraceCode::kPropose: return "propose";
    case TraceCode::kRead: return "read";
    case TraceCode::kReply: return "reply";
    case TraceCode::kInvoke: return "invoke";
    case TraceCode::kComplete: return "complete";
    case TraceCode::kFault: return "fault";
    case TraceCode::kCrash: return "crash";
    case TraceCode::kRestart: return "restart";
    case TraceCode::kCompact: return "compact";
    case TraceCode::kViolation: return "VIOLATION";
  }
  return "?";
}

std::string_view completion_name(std::uint8_t completion) {
  switch (static_cast<testing::Completion>(completion)) {
    case testing::Completion::kPending: return "pending";
    case testing::Completion::kOk: return "ok";
    case testing::Completion::kFail: return "fail";
    case testing::Completion::kUnknown: return "unknown";
  }
  return "?";
}

std::string details(const TraceRecord& r) {
  const auto type = static_cast<MessageType>(r.sub);
  switch (r.code) {
    case TraceCode::kTick: return fmt::format("n{}", r.node + 1);
    case TraceCode::kSend:
      return fmt::format("n{}->n{} {}", r.node + 1, r.peer + 1, message_type_name(type));
    case TraceCode::kDeliver:
      return fmt::format("n{}->n{} {} term {} index {}{}", r.peer + 1, r.node + 1,
                         message_type_name(type), r.a, r.b, r.note);
    case TraceCode::kDrop:
      return fmt::format("n{}->n{} {} ({})", r.peer + 1, r.node + 1, message_type_name(type),
                         r.note);
    case TraceCode::kReady:
      return fmt::format("n{} entries {} committed {}{}", r.node + 1, r.a, r.b, r.note);
    case TraceCode::kPersisted: return fmt::format("n{} durable through {}", r.node + 1, r.a);
    case TraceCode::kRole:
      return fmt::format("n{} {} term {} leader {}", r.node + 1,
                         raft_role_name(static_cast<RaftRole>(r.sub)), r.a,
                         r.note.empty() ? "-" : r.note);
    case TraceCode::kPropose:
      return fmt::format("n{} client {} write at index {} term {}", r.node + 1, r.peer, r.a, r.b);
    case TraceCode::kRead: return fmt::format("n{} client {} read {}", r.node + 1, r.peer, r.note);
    case TraceCode::kReply:
      return fmt::format("n{} -> client {}: {} {}", r.node + 1, r.peer,
                         reply_kind_name(static_cast<ReplyKind>(r.sub)), r.note);
    case TraceCode::kInvoke: return fmt::format("client {} #{} {}", r.node, r.a, r.note);
    case TraceCode::kComplete:
      return fmt::format("client {} #{} {} {}", r.node, r.a, completion_name(r.sub), r.note);
    case TraceCode::kFault: return r.note;
    case TraceCode::kCrash: return fmt::format("n{} {}", r.node + 1, r.note);
    case TraceCode::kRestart:
      return fmt::format("n{} applied {} {}", r.node + 1, r.a, r.note);
    case TraceCode::kCompact: return fmt::format("n{} through {}", r.node + 1, r.a);
    case TraceCode::kViolation: return r.note;
  }
  return r.note;
}

}  // namespace

TraceLog::TraceLog(std::size_t tail_capacity, std::function<void(std::string_view)> on_event)
    : capacity_(tail_capacity), on_event_(std::move(on_event)) {
  ring_.reserve(capacity_);
}

std::string TraceLog::format(const TraceRecord& r) {
  return fmt::format("t={}.{:06}s {} {}", r.time / 1'000'000, r.time % 1'000'000,
                     code_name(r.code), details(r));
}

void TraceLog::record(TraceRecord r, std::string_view bytes, bool hash_only) {
  ++records_;
  const std::uint64_t fields[] = {r.time, static_cast<std::uint64_t>(r.code), r.sub, r.node,
                                  r.peer, r.a, r.b};
  hash_ = XXH3_64bits_withSeed(fields, sizeof(fields), hash_);
  if (!r.note.empty()) hash_ = XXH3_64bits_withSeed(r.note.data(), r.note.size(), hash_);
  if (!bytes.empty()) hash_ = XXH3_64bits_withSeed(bytes.data(), bytes.size(), hash_);
  if (on_event_) on_event_(format(r));
  if (hash_only || capacity_ == 0) return;
  if (ring_.size() < capacity_) {
    ring_.push_back(std::move(r));
    return;
  }
  ring_[next_] = std::move(r);
  next_ = (next_ + 1) % capacity_;
}

std::vector<std::string> TraceLog::tail() const {
  std::vector<std::string> out;
  out.reserve(ring_.size());
  for (std::size_t i = 0; i < ring_.size(); ++i) {
    out.push_back(format(ring_[(next_ + i) % ring_.size()]));
  }
  return out;
}

}  // namespace nodenomad::sim
