// CatchUpRounds: see catch_up_rounds.hpp.
#include "node/catch_up_rounds.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace nodenomad::node {

CatchUpRounds::Verdict CatchUpRounds::observe(std::uint64_t now_ms, LogIndex commit,
                                              LogIndex match) {
  lag_ = commit.value() - std::min(commit, match).value();
  const bool grew = match > best_match_;
  best_match_ = std::max(best_match_, match);
  if (lag_ <= close_entries_) return {true, true};
  if (!in_round_) {
    start_round(now_ms, commit, match);
    return {false, true};
  }
  const std::uint64_t elapsed = now_ms - std::min(now_ms, round_start_ms_);
  if (match >= round_target_) {
    last_ms_ = elapsed;
    last_entries_ = round_target_.value() - std::min(round_target_, round_start_match_).value();
    ++rounds_done_;
    const bool faster = rounds_done_ == 1 || elapsed < fastest_ms_;
    if (faster) fastest_ms_ = elapsed;
    if (elapsed <= round_ms_) return {true, true};
    start_round(now_ms, commit, match);
    return {false, faster};
  }
  if (rounds_done_ == 0) return {false, grew};
  return {false, elapsed <= fastest_ms_};
}

void CatchUpRounds::start_round(std::uint64_t now_ms, LogIndex commit, LogIndex match) {
  in_round_ = true;
  round_target_ = commit;
  round_start_match_ = match;
  round_start_ms_ = now_ms;
}

std::string CatchUpRounds::describe() const {
  if (rounds_done_ == 0) return fmt::format("catch-up round 1; {} entries behind", lag_);
  return fmt::format("{} catch-up round{} done, the last {} ms for {} entries (fastest {} ms); {} "
                     "entries behind",
                     rounds_done_, rounds_done_ == 1 ? "" : "s", last_ms_, last_entries_,
                     fastest_ms_, lag_);
}

}  // namespace nodenomad::node
