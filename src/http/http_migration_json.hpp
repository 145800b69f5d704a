// The JSON answers of the migration routes (docs/http_api.md, "Migrations"):
// an operation's status, the list of them, and the batch that create,
// rebalance and drain answer. Written by hand rather than with Boost.JSON,
// whose serializer writes every double in exponent form ("4.25E1" for a
// percent of 42.5): valid JSON, but not what a person reading curl's output
// expects. Pure functions, no Boost.
//
// An operation is API.md's shape, then the extension fields, in this order:
//   {"id", "shard", "source", "target", "stage",
//    "progress": {"bytes_total", "bytes_done", "keys_done", "percent",
//                 "rate_bytes_per_s", "eta_s", "keys_total"},
//    "started_at", "finished_at", "error",
//    "batch_id", "queued", "paused", "cancel_requested",
//    "bandwidth_bytes_per_s", "stage_ms": {"prepare", ..., "cleanup"},
//    "verify_mismatches", "bytes_freed"}
// Times are ISO-8601 UTC strings with milliseconds; null when unset
// (started_at before the operation started, finished_at while it runs).
// eta_s and error are null when unknown / when there is none.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodenomad/migration/migration_status.hpp"

namespace nodenomad::net {

// "2026-11-26T10:00:00.123Z" for a Unix time in milliseconds. Times past the
// year 9999 are shown as its last millisecond (the form has four year digits).
std::string format_utc_timestamp(std::uint64_t unix_ms);

// A finite double rounded to `decimals` places, in the shortest form that
// reads back ("42.5", "100", "0.05"); 0 for NaN or an infinity.
std::string json_number(double value, int decimals);

std::string migration_status_json(const MigrationStatus& status);
// {"migrations": [<operation>, ...]}
std::string migration_list_json(const std::vector<MigrationStatus>& statuses);
// {"id": "<batch id>", "operations": ["op-id", ...]}
std::string migration_batch_json(const MigrationBatch& batch);

}  // namespace nodenomad::net
