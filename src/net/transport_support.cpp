// CallbackGate and LogOnce (declared in transport_support.hpp).
#include "net/transport_support.hpp"

#include "nodenomad/logging.hpp"

namespace nodenomad::net::detail {

void CallbackGate::open(TransportHandler* handler) {
  std::lock_guard lock(mu_);
  handler_ = handler;
  open_ = true;
}

void CallbackGate::close(bool wait_for_running) {
  std::unique_lock lock(mu_);
  open_ = false;
  if (wait_for_running) idle_.wait(lock, [this] { return running_ == 0; });
}

void LogOnce::warn(const std::string& subject, std::string_view reason,
                   std::string_view message) {
  if (logged_.size() >= kMaxEntries) {
    if (!overflow_logged_) {
      overflow_logged_ = true;
      log(LogLevel::kWarn, kLogComponent,
          "too many distinct peer problems to log each once; further ones are only counted");
    }
    return;
  }
  if (logged_.emplace(subject, std::string(reason)).second) {
    log(LogLevel::kWarn, kLogComponent, message);
  }
}

void LogOnce::forget(const std::string& subject) {
  auto it = logged_.lower_bound(std::make_pair(subject, std::string()));
  while (it != logged_.end() && it->first == subject) it = logged_.erase(it);
}

}  // namespace nodenomad::net::detail
