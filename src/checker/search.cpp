#include "checker/search.hpp"

#include <algorithm>
#include <utility>

#include "checker/event_list.hpp"
#include "checker/memo_table.hpp"
#include "nodenomad/assert.hpp"

namespace nodenomad::testing::detail {

namespace {

// The injected clock is read once per this many tried model steps: often
// enough to stop within a few milliseconds, rarely enough to cost nothing.
constexpr std::uint64_t kDeadlinePollSteps = 4096;

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Does any operation of the key observe a version? If none does, versions
// can reject nothing and the memo ignores them.
bool observes_versions(const KeyPartition& part) {
  for (const ModelOp& op : part.ops) {
    if (op.has_if_version) return true;
    if (op.outcome_known && op.result_version != kVersionNotReported) return true;
  }
  return false;
}

class Search {
 public:
  Search(const KeyPartition& part, const SearchLimits& limits)
      : part_(part),
        limits_(limits),
        events_(part),
        memo_(limits.max_states, (events_.maybe_count() + 63) / 64),
        erase_versions_(!observes_versions(part)) {
    fingerprint_keys_.resize(part.ops.size());
    bit_of_.resize(part.ops.size());
    std::size_t maybe_seen = 0;
    std::uint32_t class_count = 0;
    for (std::size_t i = 0; i < part.ops.size(); ++i) {
      if (part.ops[i].outcome_known) {
        fingerprint_keys_[i] = {mix64(2 * i), mix64(2 * i + 1)};
        ++remaining_;
      } else {
        bit_of_[i] = maybe_seen++;
        class_count = std::max(class_count, part.maybe_class[i] + 1);
      }
    }
    maybe_bits_.assign((maybe_seen + 63) / 64, 0);
    memo_bits_ = maybe_bits_;
    class_scan_.assign(class_count, 0);
    known_total_ = remaining_;
    build_dead_masks();
  }

  SearchOutcome run() {
    Cursor cursor;
    while (remaining_ > 0) {
      if (advance(cursor)) {
        if (out_of_budget()) return stopped();
        if (try_place(cursor)) cursor = Cursor{};
        continue;
      }
      note_dead_end(cursor.completion);
      if (frames_.empty()) return illegal();
      cursor = undo();
    }
    return ok();
  }

 private:
  // Where the scan for the next candidate stands. The candidates are the
  // invokes before the first completion of the ok list: the ok ones are
  // enumerated first, then the maybe ones invoked up to that time.
  struct Cursor {
    std::uint32_t entry = EventList::kOkHead;  // the last entry visited
    bool maybe_phase = false;
    std::uint32_t completion = EventList::kNil;  // set once the ok phase ends
  };

  struct Frame {
    Cursor cursor;             // where the placed invoke was found
    KeyState before;           // the state to go back to
    std::uint32_t memo_entry;  // completed when the frame is undone
    // The shallowest depth of an ancestor that refuted a configuration in
    // the subtree of the configuration this frame made (see undo()).
    std::size_t relied_on = kNoAncestor;
  };
  static constexpr std::size_t kNoAncestor = ~std::size_t{0};

  // Moves to the next candidate: true when found; false when both phases
  // are done (cursor.completion is then the completion that blocks).
  bool advance(Cursor& cursor) {
    if (!cursor.maybe_phase) {
      const std::uint32_t entry = events_.next(cursor.entry);
      NN_ASSERT(entry != EventList::kNil, "a pending completion always ends the scan");
      if (events_.is_invoke(entry)) {
        cursor.entry = entry;
        return true;
      }
      cursor = Cursor{EventList::kMaybeHead, true, entry};
      ++scan_;
    }
    const LogicalTime bound = events_.time(cursor.completion);
    for (std::uint32_t entry = events_.next(cursor.entry);
         entry != EventList::kNil && events_.time(entry) <= bound; entry = events_.next(entry)) {
      cursor.entry = entry;
      if (claim_class(entry)) return true;
    }
    return false;
  }

  // Two maybe operations of one class that have both been invoked are
  // interchangeable from then on, so a scan tries only the first one still
  // unplaced: placing a later twin leads to the same configurations.
  bool claim_class(std::uint32_t maybe_entry) {
    std::uint64_t& last_scan = class_scan_[part_.maybe_class[events_.op(maybe_entry)]];
    if (last_scan == scan_) return false;
    last_scan = scan_;
    return true;
  }

  // Counts a state each time the model accepts a step, whether or not the
  // memo then knows the result: that is the work the budget bounds. A
  // rejected step costs one model call and is bounded by the scan.
  bool try_place(const Cursor& cursor) {
    ++attempts_;
    const std::size_t index = events_.op(cursor.entry);
    const ModelOp& op = part_.ops[index];
    KeyState next;
    if (op.outcome_known) {
      if (step_ok(state_, op, &next) != nullptr) return false;
    } else if (!step_maybe(state_, op, &next)) {
      return false;
    }
    ++states_;
    if (!op.outcome_known && (!may_be_needed(next, cursor) || covered_by_ancestor(next))) {
      return false;
    }
    toggle(index);
    std::uint32_t memo_entry = MemoTable::kNotRemembered;
    if (!memo_.visit(set_lo_, set_hi_, memo_state(next), memo_maybe_bits(next), &memo_entry)) {
      toggle(index);
      return false;
    }
    frames_.push_back(Frame{cursor, state_, memo_entry, kNoAncestor});
    state_ = next;
    events_.lift(cursor.entry);
    if (op.outcome_known) --remaining_;
    return true;
  }

  // A maybe chain that leads to a state some configuration earlier in the
  // same chain already covers is pointless: whatever follows could follow
  // from there, with fewer maybe operations used. Only configurations since
  // the last ok placement share the ok set, so only they are compared.
  bool covered_by_ancestor(const KeyState& next) {
    const KeyState target = memo_state(next);
    std::size_t depth = frames_.size();
    for (const KeyState* state = &state_;; state = &frames_[depth].before) {
      if (MemoTable::covers(memo_state(*state), target)) {
        if (!frames_.empty()) {
          frames_.back().relied_on = std::min(frames_.back().relied_on, depth);
        }
        return true;
      }
      if (depth == 0 || part_.ops[events_.op(frames_[depth - 1].cursor.entry)].outcome_known) {
        return false;
      }
      --depth;
    }
  }

  // The configuration the top frame made is fully explored. Its memo entry
  // may refute others only if no refutation inside its subtree relied on
  // an ancestor above it; otherwise that ancestor inherits the reliance.
  Cursor undo() {
    const Frame frame = frames_.back();
    const std::size_t depth = frames_.size();
    frames_.pop_back();
    const std::size_t index = events_.op(frame.cursor.entry);
    if (frame.relied_on >= depth) memo_.complete(frame.memo_entry);
    if (!frames_.empty()) {
      frames_.back().relied_on = std::min(frames_.back().relied_on, frame.relied_on);
    }
    events_.unlift(frame.cursor.entry);
    toggle(index);
    state_ = frame.before;
    if (part_.ops[index].outcome_known) ++remaining_;
    if (frame.cursor.maybe_phase) {
      // Resume the maybe scan as it stood: the classes up to here are taken.
      ++scan_;
      for (std::uint32_t e = events_.next(EventList::kMaybeHead);; e = events_.next(e)) {
        claim_class(e);
        if (e == frame.cursor.entry) break;
      }
    }
    return frame.cursor;
  }

  // The state as the memo compares it: what cannot influence any answer
  // (a value no read returned, versions nobody observes) is erased, so that
  // equivalent configurations meet.
  KeyState memo_state(KeyState state) const {
    if (state.present && state.value > part_.last_read_value) state.value = kUnreadValue;
    return erase_versions_ ? without_versions(state) : state;
  }

  // A conditional maybe operation (if_version N > 0) is dead once every
  // version the key can still have is above N: versions never come back.
  // Dead operations count as placed in the memo, since no continuation can
  // use them: so two configurations that spent different dead operations
  // meet. dead_masks_[k] holds the bits of the k lowest such if_versions.
  void build_dead_masks() {
    std::vector<std::pair<std::uint64_t, std::size_t>> conditional;
    for (std::size_t i = 0; i < part_.ops.size(); ++i) {
      const ModelOp& op = part_.ops[i];
      if (!op.outcome_known && op.has_if_version && op.if_version > 0) {
        conditional.emplace_back(op.if_version, bit_of_[i]);
      }
    }
    std::sort(conditional.begin(), conditional.end());
    const std::size_t words = maybe_bits_.size();
    dead_masks_.assign((conditional.size() + 1) * words, 0);
    for (std::size_t k = 0; k < conditional.size(); ++k) {
      dead_versions_.push_back(conditional[k].first);
      std::uint64_t* mask = dead_masks_.data() + (k + 1) * words;
      std::copy_n(dead_masks_.data() + k * words, words, mask);
      mask[conditional[k].second / 64] |= std::uint64_t{1} << (conditional[k].second % 64);
    }
  }

  const std::vector<std::uint64_t>& memo_maybe_bits(const KeyState& state) {
    // The lowest version the key can still be at, now or later.
    const std::uint64_t lowest =
        !state.present ? state.floor + 1 : state.version + (state.version_known ? 0 : 1);
    const auto dead = static_cast<std::size_t>(
        std::lower_bound(dead_versions_.begin(), dead_versions_.end(), lowest) -
        dead_versions_.begin());
    const std::uint64_t* mask = dead_masks_.data() + dead * maybe_bits_.size();
    for (std::size_t w = 0; w < maybe_bits_.size(); ++w) memo_bits_[w] = maybe_bits_[w] | mask[w];
    return memo_bits_;
  }

  // Adds or removes operation `index` from the placed sets.
  void toggle(std::size_t index) {
    if (part_.ops[index].outcome_known) {
      set_lo_ ^= fingerprint_keys_[index].first;
      set_hi_ ^= fingerprint_keys_[index].second;
    } else {
      maybe_bits_[bit_of_[index] / 64] ^= std::uint64_t{1} << (bit_of_[index] % 64);
    }
  }

  // A maybe operation placed now is only worth it if some ok candidate can
  // follow it, at once or after more maybe operations: the candidates stay
  // the same until an ok operation is placed, since maybe operations have no
  // completion event to uncover new ones.
  bool may_be_needed(const KeyState& after, const Cursor& cursor) {
    if (chain_scan_ != scan_) {
      // The maybe candidates are the same for the whole scan: sum them once.
      chain_scan_ = scan_;
      chain_.clear();
      const LogicalTime bound = events_.time(cursor.completion);
      for (std::uint32_t e = events_.next(EventList::kMaybeHead);
           e != EventList::kNil && events_.time(e) <= bound; e = events_.next(e)) {
        chain_.add(part_.ops[events_.op(e)]);
      }
    }
    const ModelOp& placed = part_.ops[events_.op(cursor.entry)];
    chain_.remove(placed);  // the chain after it draws from the others
    const bool chain_possible = chain_.sets > 0 || chain_.removals > 0;
    bool needed = false;
    KeyState ignored;
    for (std::uint32_t e = events_.next(EventList::kOkHead); !needed && events_.is_invoke(e);
         e = events_.next(e)) {
      const ModelOp& op = part_.ops[events_.op(e)];
      needed = step_ok(after, op, &ignored) == nullptr ||
               (chain_possible && chain_may_enable(after, chain_, op));
    }
    chain_.add(placed);
    return needed;
  }

  bool out_of_budget() {
    if (states_ >= limits_.max_states) return true;
    if (limits_.clock != nullptr && attempts_ % kDeadlinePollSteps == 0 &&
        limits_.clock->monotonic_now() >= limits_.deadline) {
      stopped_by_deadline_ = true;
      return true;
    }
    return false;
  }

  // Remembers the deepest dead end (most ok operations placed) for the
  // explanation. Depth only grows, so this copies at most once per ok op.
  void note_dead_end(std::uint32_t completion) {
    const std::size_t placed = known_total_ - remaining_;
    if (has_best_ && placed <= best_placed_) return;
    has_best_ = true;
    best_placed_ = placed;
    outcome_.best_prefix.clear();
    for (const Frame& frame : frames_) {
      outcome_.best_prefix.push_back(events_.op(frame.cursor.entry));
    }
    outcome_.best_state = erase_versions_ ? without_versions(state_) : state_;
    outcome_.blocked = events_.op(completion);
    // The blocked operation first, then the other ok candidates, then the
    // maybe ones: the order a reader wants them in.
    outcome_.candidates.assign(1, outcome_.blocked);
    for (std::uint32_t e = events_.next(EventList::kOkHead); e != completion; e = events_.next(e)) {
      if (events_.op(e) != outcome_.blocked) outcome_.candidates.push_back(events_.op(e));
    }
    for (std::uint32_t e = events_.next(EventList::kMaybeHead);
         e != EventList::kNil && events_.time(e) <= events_.time(completion); e = events_.next(e)) {
      outcome_.candidates.push_back(events_.op(e));
    }
  }

  SearchOutcome finish(Verdict verdict) {
    outcome_.verdict = verdict;
    outcome_.states_explored = states_;
    return std::move(outcome_);
  }
  SearchOutcome ok() {
    for (const Frame& frame : frames_) {
      outcome_.linearization.push_back(events_.op(frame.cursor.entry));
    }
    assert_linearizes(outcome_.linearization);
    return finish(Verdict::kOk);
  }

  // kOk must never be wrong, so the order found is replayed from scratch:
  // every ok operation once, each step legal, and no operation placed after
  // one that was invoked after it completed. A failure is a checker bug.
  void assert_linearizes(const std::vector<std::size_t>& order) const {
    std::vector<bool> placed(part_.ops.size(), false);
    std::size_t ok_placed = 0;
    LogicalTime latest_invoke = 0;
    KeyState state;
    for (const std::size_t index : order) {
      const ModelOp& op = part_.ops[index];
      NN_ASSERT(!placed[index], "operation #", op.id, " placed twice");
      placed[index] = true;
      if (op.outcome_known) {
        ++ok_placed;
        NN_ASSERT(part_.complete_times[index] >= latest_invoke, "operation #", op.id,
                  " placed after an operation invoked once it had completed");
      }
      latest_invoke = std::max(latest_invoke, part_.invoke_times[index]);
      KeyState next;
      const bool legal =
          op.outcome_known ? step_ok(state, op, &next) == nullptr : step_maybe(state, op, &next);
      NN_ASSERT(legal, "operation #", op.id, " does not replay from its place");
      state = next;
    }
    NN_ASSERT(ok_placed == known_total_, "a linearization misses ok operations");
  }
  SearchOutcome illegal() { return finish(Verdict::kIllegal); }
  SearchOutcome stopped() {
    outcome_.stopped_by_deadline = stopped_by_deadline_;
    return finish(Verdict::kUnknown);
  }

  const KeyPartition& part_;
  const SearchLimits& limits_;
  EventList events_;
  MemoTable memo_;
  const bool erase_versions_;
  // Zobrist keys: the set of placed ok operations is fingerprinted as the
  // XOR of its members' 128-bit keys, updated in O(1) per placement.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> fingerprint_keys_;
  std::uint64_t set_lo_ = 0;
  std::uint64_t set_hi_ = 0;
  // The placed maybe operations, one bit each (bit_of_ maps op -> bit).
  std::vector<std::size_t> bit_of_;
  std::vector<std::uint64_t> maybe_bits_;
  std::vector<std::uint64_t> memo_bits_;      // maybe_bits_ with the dead ones added
  std::vector<std::uint64_t> dead_versions_;  // if_versions of conditional maybe ops, sorted
  std::vector<std::uint64_t> dead_masks_;     // build_dead_masks()
  // claim_class(): the scan in which each maybe class was last taken.
  std::vector<std::uint64_t> class_scan_;
  std::uint64_t scan_ = 0;
  // may_be_needed(): the maybe candidates of scan chain_scan_, summed.
  MaybeChainSummary chain_;
  std::uint64_t chain_scan_ = 0;
  KeyState state_;
  std::vector<Frame> frames_;
  std::size_t remaining_ = 0;  // ok operations not placed yet
  std::size_t known_total_ = 0;
  std::uint64_t states_ = 0;    // accepted model steps
  std::uint64_t attempts_ = 0;  // model steps tried, accepted or not
  bool stopped_by_deadline_ = false;
  bool has_best_ = false;
  std::size_t best_placed_ = 0;
  SearchOutcome outcome_;
};

}  // namespace

SearchOutcome search_partition(const KeyPartition& part, const SearchLimits& limits) {
  NN_ASSERT(limits.max_states > 0, "the state budget must be positive");
  return Search(part, limits).run();
}

}  // namespace nodenomad::testing::detail
