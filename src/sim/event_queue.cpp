#include "sim/event_queue.hpp"

#include <algorithm>

#include "nodenomad/assert.hpp"

namespace nodenomad::sim {
namespace {

// std::*_heap keep the largest element first; "larger" here is "earlier".
bool later(const SimEvent& a, const SimEvent& b) {
  if (a.time != b.time) return a.time > b.time;
  return a.sequence > b.sequence;
}

}  // namespace

std::string_view event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::kTick: return "tick";
    case EventKind::kDeliver: return "deliver";
    case EventKind::kDiskDone: return "disk_done";
    case EventKind::kClientArrive: return "client_arrive";
    case EventKind::kClientReply: return "client_reply";
    case EventKind::kClientWake: return "client_wake";
    case EventKind::kClientDeadline: return "client_deadline";
    case EventKind::kAttemptTimeout: return "attempt_timeout";
    case EventKind::kNemesis: return "nemesis";
    case EventKind::kRestart: return "restart";
    case EventKind::kNetworkHeal: return "network_heal";
    case EventKind::kClogStep: return "clog_step";
    case EventKind::kHostAction: return "host_action";
    case EventKind::kRejoinStep: return "rejoin_step";
  }
  return "unknown";
}

std::string_view reply_kind_name(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kOk: return "ok";
    case ReplyKind::kNotLeader: return "not_leader";
    case ReplyKind::kBusy: return "busy";
    case ReplyKind::kUnavailable: return "unavailable";
    case ReplyKind::kLost: return "lost";
    case ReplyKind::kRefused: return "refused";
  }
  return "unknown";
}

bool EventQueue::push(SimEvent event) {
  if (heap_.size() >= kMaxPendingEvents) return false;
  event.sequence = next_sequence_++;
  heap_.push_back(std::move(event));
  std::push_heap(heap_.begin(), heap_.end(), later);
  return true;
}

SimTime EventQueue::next_time() const {
  NN_ASSERT(!heap_.empty(), "next_time() of an empty event queue");
  return heap_.front().time;
}

SimEvent EventQueue::pop() {
  NN_ASSERT(!heap_.empty(), "pop() of an empty event queue");
  std::pop_heap(heap_.begin(), heap_.end(), later);
  SimEvent event = std::move(heap_.back());
  heap_.pop_back();
  return event;
}

}  // namespace nodenomad::sim
