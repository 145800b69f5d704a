// CallbackGate and LogOnce: the two pieces of AsioTransport's inside that
// need no Asio (so they compile in a translation unit of their own).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "nodenomad/transport.hpp"

namespace nodenomad::net::detail {

inline constexpr std::string_view kLogComponent = "transport";

// Lets calls into the host (TransportHandler, the foreign handler) happen
// until close(), and lets close() wait for a call in progress on another
// thread, so that nothing calls the host after stop() returns. No lock is held
// during the call itself.
class CallbackGate {
 public:
  void open(TransportHandler* handler);
  // wait_for_running: false when the caller is itself on the strand (inside a
  // callback or a handler), where no other callback can be running.
  void close(bool wait_for_running);

  // Runs call(handler) unless closed; answers whether it ran.
  template <typename Call>
  bool run(Call&& call) {
    TransportHandler* handler = nullptr;
    {
      std::lock_guard lock(mu_);
      if (!open_) return false;
      ++running_;
      handler = handler_;
    }
    call(*handler);
    std::lock_guard lock(mu_);
    if (--running_ == 0) idle_.notify_all();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  bool open_ = false;
  int running_ = 0;
  TransportHandler* handler_ = nullptr;
};

// Logs each (subject, reason) once until forget(subject), so a peer that
// keeps failing the same way, or a client that keeps sending garbage, fills
// one log line, not one per attempt. Bounded: past kMaxEntries distinct
// problems it says so once and goes quiet (the counters still count).
// Strand only.
class LogOnce {
 public:
  void warn(const std::string& subject, std::string_view reason, std::string_view message);
  void forget(const std::string& subject);

 private:
  static constexpr std::size_t kMaxEntries = 1024;
  std::set<std::pair<std::string, std::string>, std::less<>> logged_;
  bool overflow_logged_ = false;
};

}  // namespace nodenomad::net::detail
