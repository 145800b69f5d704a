// Phases of a real-process test under load: keep the KvWorkload running until
// its answers show what the phase needs (and at least a minimum time), and
// the end-of-run report and checks. Catch2 assertions: call from the test's
// main thread only.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "cluster/kv_workload.hpp"
#include "cluster/process_cluster.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::process_testing {

// The keys the failover and migration tests load: `plain` plain ones, and
// two that travel percent-encoded (a slash and a space; a NUL and a byte
// that is not UTF-8).
std::vector<std::string> workload_keys(std::size_t plain);

// Any phase that takes longer than this (scaled) fails.
inline constexpr std::chrono::milliseconds kPhaseTimeout{30'000};

// Keeps the load running until `done` holds of its counts and at least
// `at_least` passed; FAILs naming `what` and `phase` after kPhaseTimeout.
// Prints the counts at the end of the phase.
void run_load_until(const KvWorkload& load, const std::function<bool(const OutcomeCounts&)>& done,
                    const std::string& what, std::chrono::milliseconds at_least, const char* phase);

// ... until `answers` more ok answers than in `since`.
void run_load_for_answers(const KvWorkload& load, const OutcomeCounts& since, std::uint64_t answers,
                          std::chrono::milliseconds at_least, const char* phase);

// True once every key had a write acknowledged since `since`.
bool every_key_written_since(const OutcomeCounts& since, const OutcomeCounts& now);

// Prints the run's counts and why outcomes were unknown, requires no answer
// API.md does not allow (KvWorkload's "unexpected"), then the history checks
// of check_history_with_final_reads() over `keys`.
void check_run(ProcessCluster& cluster, testing::HistoryRecorder& recorder, const KvWorkload& load,
               const std::vector<std::string>& keys);

// SIGTERM to every running node; each must exit 0.
void terminate_all_gracefully(ProcessCluster& cluster);

}  // namespace nodenomad::process_testing
