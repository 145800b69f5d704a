#include "sim/sim_clients.hpp"

#include <fmt/format.h>

namespace nodenomad::sim {

using testing::Completion;
using testing::KvOpKind;

ClientDriver::ClientDriver(ClientParams params, testing::SimWorkload& workload, Rng rng,
                           ClientHost& host)
    : params_(params), workload_(workload), rng_(rng), host_(host), clients_(params.client_count) {
  for (Client& c : clients_) c.target = static_cast<std::uint32_t>(rng_.uniform(params_.node_count));
}

void ClientDriver::start() {
  for (std::uint32_t i = 0; i < clients_.size(); ++i) {
    schedule_wake(i, rng_.uniform_in(1, params_.max_think_us));
  }
}

bool ClientDriver::idle() const {
  for (const Client& c : clients_) {
    if (c.busy) return false;
  }
  return true;
}

void ClientDriver::schedule_wake(std::uint32_t index, SimTime delay) {
  Client& c = clients_[index];
  host_.schedule_client(EventKind::kClientWake, index, ++c.wake_token, delay);
}

std::uint32_t ClientDriver::other_node(std::uint32_t than) {
  if (params_.node_count == 1) return 0;
  const auto step = static_cast<std::uint32_t>(rng_.uniform_in(1, params_.node_count - 1));
  return (than + step) % params_.node_count;
}

void ClientDriver::on_wake(std::uint32_t index, std::uint64_t token) {
  Client& c = clients_[index];
  if (token != c.wake_token) return;
  if (!c.busy) {
    if (issuing_) begin_operation(index);
    return;
  }
  if (!c.awaiting_reply) send_attempt(index);  // a retry after a definite "not applied"
}

void ClientDriver::begin_operation(std::uint32_t index) {
  Client& c = clients_[index];
  std::optional<testing::KvOp> op = workload_.next_op(index, rng_);
  if (!op) {
    schedule_wake(index, params_.max_think_us);
    return;
  }
  c.busy = true;
  c.op = std::move(*op);
  c.op_id = recorder_.invoke(index, c.op);
  ++c.serial;
  c.deadline = host_.now() + params_.op_timeout_us;
  c.maybe_applied = false;
  host_.trace().record({.time = host_.now(), .code = TraceCode::kInvoke, .node = index,
                        .a = c.op_id, .note = testing::to_string(c.op)});
  host_.schedule_client(EventKind::kClientDeadline, index, c.serial, params_.op_timeout_us);
  send_attempt(index);
}

void ClientDriver::send_attempt(std::uint32_t index) {
  Client& c = clients_[index];
  c.request_id = next_request_id_++;
  c.awaiting_reply = true;
  ++counters_.attempts;
  if (c.op.kind == KvOpKind::kGet) {
    host_.schedule_client(EventKind::kAttemptTimeout, index, c.request_id,
                          params_.read_attempt_timeout_us);
  } else {
    c.maybe_applied = true;
  }
  host_.send_request(c.target, ClientRequest{c.request_id, index, c.op});
}

void ClientDriver::retry_later(std::uint32_t index, SimTime backoff) {
  Client& c = clients_[index];
  // Past the deadline the operation fails there; no attempt is in doubt.
  if (host_.now() + backoff >= c.deadline) return;
  schedule_wake(index, backoff);
}

void ClientDriver::on_reply(std::uint32_t from_node, const ClientReply& reply) {
  Client& c = clients_[reply.client];
  if (!c.busy || !c.awaiting_reply || reply.request_id != c.request_id) return;  // stale
  c.awaiting_reply = false;
  switch (reply.kind) {
    case ReplyKind::kOk:
      c.target = from_node;
      finish(static_cast<std::uint32_t>(reply.client), Completion::kOk, &reply.result);
      return;
    case ReplyKind::kRefused:
      finish(static_cast<std::uint32_t>(reply.client), Completion::kFail, nullptr);
      return;
    case ReplyKind::kNotLeader: {
      c.maybe_applied = false;
      const std::optional<std::uint32_t> hint = host_.node_index(reply.leader_hint);
      const bool useful = hint && *hint != from_node;
      c.target = useful ? *hint : other_node(from_node);
      // Without a leader an election is under way: give it a moment.
      retry_later(static_cast<std::uint32_t>(reply.client),
                  useful ? 1'000 : params_.retry_backoff_us * 5);
      return;
    }
    case ReplyKind::kUnavailable:
      c.target = other_node(from_node);
      [[fallthrough]];
    case ReplyKind::kBusy:
    case ReplyKind::kLost:
      c.maybe_applied = false;
      retry_later(static_cast<std::uint32_t>(reply.client),
                  rng_.uniform_in(1, params_.retry_backoff_us));
      return;
  }
}

void ClientDriver::on_attempt_timeout(std::uint32_t index, std::uint64_t request_id) {
  Client& c = clients_[index];
  if (!c.busy || !c.awaiting_reply || c.request_id != request_id) return;
  // Only reads time out per attempt: a read changes nothing, so another
  // node may be asked while the first one still holds the request.
  c.awaiting_reply = false;
  c.target = other_node(c.target);
  send_attempt(index);
}

void ClientDriver::on_deadline(std::uint32_t index, std::uint64_t serial) {
  Client& c = clients_[index];
  if (!c.busy || c.serial != serial) return;
  const bool in_doubt = c.op.kind == KvOpKind::kGet ? c.awaiting_reply : c.maybe_applied;
  finish(index, in_doubt ? Completion::kUnknown : Completion::kFail, nullptr);
}

void ClientDriver::finish(std::uint32_t index, Completion completion,
                          const testing::KvResult* result) {
  Client& c = clients_[index];
  switch (completion) {
    case Completion::kOk:
      recorder_.complete_ok(c.op_id, *result);
      ++counters_.ok;
      break;
    case Completion::kFail:
      recorder_.complete_fail(c.op_id);
      ++counters_.fail;
      break;
    default:
      recorder_.complete_unknown(c.op_id);
      ++counters_.unknown;
      break;
  }
  host_.trace().record({.time = host_.now(),
                        .code = TraceCode::kComplete,
                        .sub = static_cast<std::uint8_t>(completion),
                        .node = index,
                        .a = c.op_id,
                        .note = result != nullptr ? testing::to_string(*result) : ""});
  workload_.on_complete(index, c.op, completion, result);
  c.busy = false;
  c.awaiting_reply = false;
  c.maybe_applied = false;
  schedule_wake(index, rng_.uniform_in(1, params_.max_think_us));
}

}  // namespace nodenomad::sim
