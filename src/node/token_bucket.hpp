// TokenBucket: a byte-rate limit with time given by the caller (no clock
// inside, so it behaves the same under a test's manual clock).
//
// A send of any size may go once the bucket is not in debt; it then takes
// its bytes, possibly into debt, so a chunk larger than the burst still
// passes at the configured average rate.
//
// Thread safety: none (the node's loop).
#pragma once

#include <algorithm>
#include <cstdint>

namespace nodenomad::node {

class TokenBucket {
 public:
  // bytes_per_s 0: unlimited.
  void set_rate(std::uint64_t bytes_per_s, std::uint64_t now_ms) {
    refill(now_ms);
    rate_ = bytes_per_s;
    if (rate_ == 0) tokens_ = 0;
  }
  std::uint64_t rate() const { return rate_; }

  // Milliseconds until a send may go (0: now).
  std::uint64_t wait_ms(std::uint64_t now_ms) {
    if (rate_ == 0) return 0;
    refill(now_ms);
    if (tokens_ >= 0) return 0;
    return static_cast<std::uint64_t>(-tokens_ * 1000.0 / static_cast<double>(rate_)) + 1;
  }

  void take(std::uint64_t bytes, std::uint64_t now_ms) {
    if (rate_ == 0) return;
    refill(now_ms);
    tokens_ -= static_cast<double>(bytes);
  }

 private:
  void refill(std::uint64_t now_ms) {
    if (now_ms > last_ms_ && rate_ != 0) {
      // At most 100 ms of credit: an idle stream does not burst later.
      const double burst = static_cast<double>(rate_) / 10.0;
      tokens_ = std::min(burst, tokens_ + static_cast<double>(now_ms - last_ms_) *
                                              static_cast<double>(rate_) / 1000.0);
    }
    last_ms_ = std::max(last_ms_, now_ms);
  }

  std::uint64_t rate_ = 0;
  double tokens_ = 0;
  std::uint64_t last_ms_ = 0;
};

}  // namespace nodenomad::node
