#include "nodenomad/status.hpp"

namespace nodenomad {

std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kIOError: return "io_error";
    case StatusCode::kNotLeader: return "not_leader";
    case StatusCode::kTimeout: return "timeout";
    case StatusCode::kBusy: return "busy";
    case StatusCode::kVersionMismatch: return "version_mismatch";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kFailed: return "failed";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kNotSupported: return "not_supported";
    case StatusCode::kAborted: return "aborted";
  }
  return "unknown";
}

Status::Status(StatusCode code, std::string message) {
  NN_ASSERT(code != StatusCode::kOk, "an error Status needs an error code");
  state_ = std::make_unique<State>(State{code, std::move(message)});
}

Status::Status(const Status& other)
    : state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
  return *this;
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string out(status_code_name(state_->code));
  if (!state_->message.empty()) {
    out += ": ";
    out += state_->message;
  }
  return out;
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return Status();
  std::string msg(context);
  msg += ": ";
  msg += state_->message;
  return Status(state_->code, std::move(msg));
}

bool operator==(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

}  // namespace nodenomad
