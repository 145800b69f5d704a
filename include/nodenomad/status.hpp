// Status and Result<T>: how every operating error leaves a NodeNomad call.
//
// Thread safety: values; a Status or Result may be moved between threads but
// not shared mutably. No exception crosses the public API: a call that can
// fail for a reason outside the program's control (I/O, a peer, bad input)
// returns a Status or a Result<T>, and the caller must look at it
// ([[nodiscard]]). A broken invariant is not a Status: it is NN_ASSERT.
//
// Cost: an OK Status is one null pointer, so returning Status::ok() on a hot
// path costs nothing (the LevelDB way); the code and message live on the heap
// only for errors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "nodenomad/assert.hpp"

namespace nodenomad {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kNotFound,          // the key, file or entry does not exist
  kInvalidArgument,   // the caller's input is wrong; the message says how
  kCorruption,        // stored bytes fail their checksum or framing
  kIOError,           // the operating system refused a read, write or sync
  kNotLeader,         // a Raft proposal or read reached a non-leader
  kTimeout,           // the outcome is unknown
  kBusy,              // a bounded queue is full; retry later
  kVersionMismatch,   // compare-and-set lost: the current version differs
  kUnavailable,       // no quorum or the component has stopped; not applied
  kFailed,            // the component is in a failed state (after a bad fsync)
  kAlreadyExists,
  kNotSupported,
  kAborted,           // cancelled by the caller or by shutdown
};

// The snake_case name used in logs and in the HTTP API's error codes.
std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status ok() { return Status(); }
  static Status not_found(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status invalid_argument(std::string msg) {
    return {StatusCode::kInvalidArgument, std::move(msg)};
  }
  static Status corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status io_error(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status not_leader(std::string msg) { return {StatusCode::kNotLeader, std::move(msg)}; }
  static Status timeout(std::string msg) { return {StatusCode::kTimeout, std::move(msg)}; }
  static Status busy(std::string msg) { return {StatusCode::kBusy, std::move(msg)}; }
  static Status version_mismatch(std::string msg) {
    return {StatusCode::kVersionMismatch, std::move(msg)};
  }
  static Status unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status failed(std::string msg) { return {StatusCode::kFailed, std::move(msg)}; }
  static Status already_exists(std::string msg) {
    return {StatusCode::kAlreadyExists, std::move(msg)};
  }
  static Status not_supported(std::string msg) {
    return {StatusCode::kNotSupported, std::move(msg)};
  }
  static Status aborted(std::string msg) { return {StatusCode::kAborted, std::move(msg)}; }

  bool is_ok() const { return state_ == nullptr; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  bool is(StatusCode code) const { return this->code() == code; }
  std::string_view message() const { return state_ ? std::string_view(state_->message) : ""; }

  // "io_error: fsync of wal/000001.log failed: Input/output error"
  std::string to_string() const;

  // Returns a copy whose message is "context: original message".
  Status with_context(std::string_view context) const;

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

bool operator==(const Status& a, const Status& b);

// A value or the Status that explains why there is none. Never both, and an
// error Result never holds an OK status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    NN_ASSERT(!status_.is_ok(), "a Result built from a Status must carry an error");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    NN_ASSERT(is_ok(), "value() of an error Result: ", status_.to_string());
    return *value_;
  }
  const T& value() const& {
    NN_ASSERT(is_ok(), "value() of an error Result: ", status_.to_string());
    return *value_;
  }
  T&& value() && {
    NN_ASSERT(is_ok(), "value() of an error Result: ", status_.to_string());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Moves the error out (for propagation); precondition: !is_ok().
  Status take_status() && {
    NN_ASSERT(!is_ok(), "take_status() of an OK Result");
    return std::move(status_);
  }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace nodenomad

// Propagates an error Status from an expression that yields a Status.
#define NN_RETURN_IF_ERROR(expr)                        \
  do {                                                  \
    ::nodenomad::Status nn_status_ = (expr);            \
    if (!nn_status_.is_ok()) return nn_status_;         \
  } while (0)

#define NN_CONCAT_INNER_(a, b) a##b
#define NN_CONCAT_(a, b) NN_CONCAT_INNER_(a, b)

// `NN_ASSIGN_OR_RETURN(auto x, expr)`: binds the value of a Result or returns
// its Status from the enclosing function.
#define NN_ASSIGN_OR_RETURN(decl, expr) \
  NN_ASSIGN_OR_RETURN_IMPL_(NN_CONCAT_(nn_result_, __LINE__), decl, expr)
#define NN_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return std::move(tmp).take_status(); \
  decl = std::move(tmp).value()
