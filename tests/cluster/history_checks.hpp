// The checks every real-process history ends with (Catch2 assertions, so
// call them from the test's main thread only, after the clients stopped).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/process_cluster.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::process_testing {

// The client id of the final reads.
inline constexpr testing::ClientId kFinalReaderClient = 1000;

// Ends the history with one linearizable GET of every key (retried through
// the running nodes until one answers 200 or 404), then requires: no
// acknowledged write lost (find_lost_writes) and a verdict other than
// kIllegal from the linearizability checker (kUnknown is a warning).
// Answers the final reads.
std::map<std::string, testing::KvResult> check_history_with_final_reads(
    ProcessCluster& cluster, testing::HistoryRecorder& recorder,
    const std::vector<std::string>& keys);

}  // namespace nodenomad::process_testing
