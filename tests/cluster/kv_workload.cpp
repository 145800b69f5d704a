// KvWorkload (kv_workload.hpp): the client threads, the answer mapping and
// the acknowledged-write check.
#include "cluster/kv_workload.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "cluster/json_reader.hpp"
#include "nodenomad/rng.hpp"

namespace nodenomad::process_testing {
namespace {

using testing::Completion;
using testing::KvOp;
using testing::KvOpKind;
using testing::KvResult;
using testing::KvResultKind;

constexpr std::size_t kMaxUnexpectedKept = 20;
constexpr std::size_t kMaxUnknownReasons = 20;
constexpr std::chrono::milliseconds kWaitPollInterval{5};
constexpr std::chrono::milliseconds kFinalReadRetryInterval{20};
constexpr std::chrono::milliseconds kPauseAfterRefusal{10};

// The operation mix, in percent: reads, blind writes, compare-and-set writes,
// deletes (half of them conditional).
constexpr std::uint64_t kGetPercent = 35;
constexpr std::uint64_t kPutPercent = 30;
constexpr std::uint64_t kCasPercent = 20;

ClassifiedAnswer ok(KvResult result) { return {Completion::kOk, std::move(result), {}}; }
ClassifiedAnswer fail() { return {Completion::kFail, {}, {}}; }
ClassifiedAnswer unknown() { return {Completion::kUnknown, {}, {}}; }
ClassifiedAnswer unexpected(Completion completion, KvResult result, std::string why) {
  return {completion, std::move(result), std::move(why)};
}

std::string describe_answer(const HttpReply& reply) {
  return fmt::format("{} {}", reply.status, reply.body.substr(0, 200));
}

ClassifiedAnswer classify_ok_200(const KvOp& op, const HttpReply& reply) {
  switch (op.kind) {
    case KvOpKind::kSet: {
      const std::optional<std::uint64_t> version = json_uint_member(reply.body, "version");
      if (!version)
        return unexpected(Completion::kOk, KvResult::written(),
                          "200 without a version: " + describe_answer(reply));
      return ok(KvResult::written(*version));
    }
    case KvOpKind::kGet: {
      const std::optional<std::string> header = reply.header("x-nodenomad-version");
      std::uint64_t version = testing::kVersionNotReported;
      if (header) version = std::strtoull(header->c_str(), nullptr, 10);
      if (version == 0) {
        return unexpected(Completion::kOk, KvResult::found(reply.body),
                          "GET 200 without X-NodeNomad-Version");
      }
      return ok(KvResult::found(reply.body, version));
    }
    case KvOpKind::kRemove:
    case KvOpKind::kExpire: {
      const std::optional<bool> deleted = json_bool_member(reply.body, "deleted");
      if (!deleted)
        return unexpected(Completion::kUnknown, {},
                          "DELETE 200 without deleted: " + describe_answer(reply));
      return ok(KvResult::removed(*deleted));
    }
  }
  return unknown();
}

ClassifiedAnswer classify_reply(const KvOp& op, const HttpReply& reply) {
  switch (reply.status) {
    case 200: return classify_ok_200(op, reply);
    case 404:
      if (op.kind == KvOpKind::kGet) return ok(KvResult::not_found());
      return unexpected(Completion::kUnknown, {}, describe_answer(reply));
    case 412: {
      const std::optional<std::uint64_t> current = json_uint_member(reply.body, "current_version");
      if (!op.if_version || !current) {
        return unexpected(Completion::kUnknown, {}, describe_answer(reply));
      }
      return ok(KvResult::version_mismatch(*current));
    }
    case 503: return fail();
    case 504: return unknown();
    case 400:
    case 405:
    case 413: return unexpected(Completion::kFail, {}, describe_answer(reply));
    default: return unexpected(Completion::kUnknown, {}, describe_answer(reply));
  }
}

}  // namespace

std::string OutcomeCounts::describe() const {
  return fmt::format("ok {} (writes {}), fail {}, unknown {}, unexpected {}", ok, ok_writes, fail,
                     unknown, unexpected);
}

const char* kv_method(const KvOp& op) {
  switch (op.kind) {
    case KvOpKind::kSet: return "PUT";
    case KvOpKind::kGet: return "GET";
    case KvOpKind::kRemove:
    case KvOpKind::kExpire: return "DELETE";
  }
  return "GET";
}

std::string kv_target(const KvOp& op) {
  std::string target = "/v1/kv/" + percent_encode(op.key);
  if (op.if_version) target += "?if_version=" + std::to_string(*op.if_version);
  return target;
}

ClassifiedAnswer classify_answer(const KvOp& op, const HttpResult& answer) {
  if (!answer.reply) return answer.request_sent ? unknown() : fail();
  ClassifiedAnswer classified = classify_reply(op, *answer.reply);
  classified.http_status = answer.reply->status;
  return classified;
}

KvWorkload::KvWorkload(WorkloadOptions options, testing::HistoryRecorder& recorder)
    : options_(std::move(options)),
      recorder_(recorder),
      ok_writes_by_key_(std::make_unique<std::atomic<std::uint64_t>[]>(options_.keys.size())) {}

KvWorkload::~KvWorkload() { stop(); }

void KvWorkload::start() {
  stopping_ = false;
  if (!options_.trace_path.empty() && trace_ == nullptr) {
    trace_ = std::fopen(options_.trace_path.c_str(), "a");
  }
  Rng seeds(options_.seed);
  for (std::size_t client = 0; client < options_.clients; ++client) {
    threads_.emplace_back([this, client, seed = seeds.next_u64()] { run_client(client, seed); });
  }
}

void KvWorkload::stop() {
  stopping_ = true;
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  if (trace_ != nullptr) {
    std::fclose(trace_);
    trace_ = nullptr;
  }
}

namespace {

std::string clock_text(std::chrono::system_clock::time_point at) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch());
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", utc.tm_hour, utc.tm_min, utc.tm_sec,
                     ms.count() % 1000);
}

}  // namespace

void KvWorkload::trace(testing::OpId id, std::size_t client, std::uint16_t port,
                       const KvOp& op, const HttpResult& answer,
                       std::chrono::system_clock::time_point sent) {
  if (trace_ == nullptr) return;
  std::string outcome;
  if (answer.reply) {
    std::string body = answer.reply->body.substr(0, 160);
    for (char& c : body) {
      if (c == '\n' || static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    const std::optional<std::string> version = answer.reply->header("x-nodenomad-version");
    outcome = fmt::format("{}{} {}", answer.reply->status,
                          version ? " v" + *version : std::string(), body);
  } else {
    outcome = fmt::format("{}: {}", answer.request_sent ? "no answer" : "not sent", answer.error);
  }
  const std::string line =
      fmt::format("#{} c{} port {} {}..{} {} {} -> {}\n", id, client + 1, port, clock_text(sent),
                  clock_text(std::chrono::system_clock::now()), kv_method(op), kv_target(op),
                  outcome);
  std::lock_guard lock(trace_mutex_);
  std::fputs(line.c_str(), trace_);
}

void KvWorkload::run_client(std::size_t client, std::uint64_t client_seed) {
  Rng rng(client_seed);
  std::vector<HttpConnection> connections;
  for (const std::uint16_t port : options_.ports)
    connections.emplace_back(port, options_.request_timeout);
  std::map<std::string, std::uint64_t> versions_seen;  // 0 = seen absent
  const testing::ClientId client_id = client + 1;
  for (std::uint64_t sequence = 0; !stopping_; ++sequence) {
    HttpConnection& connection = connections[rng.uniform(connections.size())];
    const std::size_t key_index = rng.uniform(options_.keys.size());
    const std::string& key = options_.keys[key_index];
    const std::uint64_t roll = rng.uniform(100);
    std::string value = fmt::format("c{}-{}", client_id, sequence);
    if (rng.uniform(100) < options_.large_value_percent)
      value.resize(options_.large_value_bytes, '.');
    const auto seen = versions_seen.find(key);
    const std::uint64_t expected = seen == versions_seen.end() ? 0 : seen->second;
    KvOp op;
    if (roll < kGetPercent) {
      op = KvOp::get(key);
    } else if (roll < kGetPercent + kPutPercent) {
      op = KvOp::set(key, value);
    } else if (roll < kGetPercent + kPutPercent + kCasPercent) {
      op = KvOp::set(key, value, expected);
    } else {
      op = rng.chance(0.5) ? KvOp::remove(key) : KvOp::remove(key, expected);
    }
    const testing::OpId id = recorder_.invoke(client_id, op);
    const auto sent = std::chrono::system_clock::now();
    const HttpResult answer = connection.request(kv_method(op), kv_target(op), op.value);
    record(id, key_index, op, answer, versions_seen);
    trace(id, client, connection.port(), op, answer, sent);
    // A node that is down refuses at once; pausing keeps the clients from
    // spinning on it and starving the nodes that are starting on 2 cores.
    if (!answer.reply && !answer.request_sent) std::this_thread::sleep_for(kPauseAfterRefusal);
  }
}

void KvWorkload::record(testing::OpId id, std::size_t key_index, const KvOp& op,
                        const HttpResult& answer,
                        std::map<std::string, std::uint64_t>& versions_seen) {
  const ClassifiedAnswer classified = classify_answer(op, answer);
  switch (classified.completion) {
    case Completion::kOk:
      recorder_.complete_ok(id, classified.result);
      ++ok_;
      if (op.kind != KvOpKind::kGet && classified.result.kind != KvResultKind::kVersionMismatch) {
        ++ok_writes_;
        ++ok_writes_by_key_[key_index];
      }
      break;
    case Completion::kFail: {
      recorder_.complete_fail(id);
      ++fail_;
      const std::string reason =
          answer.reply ? std::to_string(answer.reply->status) : "not sent: " + answer.error;
      std::lock_guard lock(unexpected_mutex_);
      if (fail_reasons_.size() < kMaxUnknownReasons || fail_reasons_.contains(reason)) {
        ++fail_reasons_[reason];
      }
      break;
    }
    case Completion::kUnknown:
    case Completion::kPending: {
      recorder_.complete_unknown(id);
      ++unknown_;
      const std::string reason =
          answer.reply ? std::to_string(answer.reply->status) : "no answer: " + answer.error;
      std::lock_guard lock(unexpected_mutex_);
      if (unknown_reasons_.size() < kMaxUnknownReasons || unknown_reasons_.contains(reason)) {
        ++unknown_reasons_[reason];
      }
      break;
    }
  }
  if (!classified.unexpected.empty()) {
    ++unexpected_;
    std::lock_guard lock(unexpected_mutex_);
    if (unexpected_answers_.size() < kMaxUnexpectedKept) {
      unexpected_answers_.push_back(
          fmt::format("{} {}: {}", kv_method(op), kv_target(op), classified.unexpected));
    }
  }
  if (classified.completion != Completion::kOk) return;
  const KvResult& result = classified.result;
  switch (result.kind) {
    case KvResultKind::kWritten:
    case KvResultKind::kFound:
    case KvResultKind::kVersionMismatch: versions_seen[op.key] = result.version; break;
    case KvResultKind::kNotFound: versions_seen[op.key] = 0; break;
    case KvResultKind::kRemoved:
      if (result.deleted) versions_seen[op.key] = 0;
      break;
  }
}

OutcomeCounts KvWorkload::counts() const {
  OutcomeCounts counts{ok_.load(),        fail_.load(),       unknown_.load(),
                       ok_writes_.load(), unexpected_.load(), {}};
  for (std::size_t i = 0; i < options_.keys.size(); ++i) {
    counts.ok_writes_by_key.push_back(ok_writes_by_key_[i].load());
  }
  return counts;
}

std::vector<std::string> KvWorkload::unexpected_answers() const {
  std::lock_guard lock(unexpected_mutex_);
  return unexpected_answers_;
}

std::map<std::string, std::uint64_t> KvWorkload::unknown_reasons() const {
  std::lock_guard lock(unexpected_mutex_);
  return unknown_reasons_;
}

std::map<std::string, std::uint64_t> KvWorkload::fail_reasons() const {
  std::lock_guard lock(unexpected_mutex_);
  return fail_reasons_;
}

bool KvWorkload::wait_until(const std::function<bool(const OutcomeCounts&)>& enough,
                            std::chrono::milliseconds timeout) const {
  const Deadline deadline = deadline_after(timeout);
  while (!enough(counts())) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(kWaitPollInterval);
  }
  return true;
}

ClassifiedAnswer perform_recorded(testing::HistoryRecorder& recorder, testing::ClientId client,
                                  HttpConnection& connection, const KvOp& op) {
  const testing::OpId id = recorder.invoke(client, op);
  ClassifiedAnswer classified =
      classify_answer(op, connection.request(kv_method(op), kv_target(op), op.value));
  switch (classified.completion) {
    case Completion::kOk: recorder.complete_ok(id, classified.result); break;
    case Completion::kFail: recorder.complete_fail(id); break;
    case Completion::kUnknown:
    case Completion::kPending: recorder.complete_unknown(id); break;
  }
  return classified;
}

std::optional<KvResult> final_read(testing::HistoryRecorder& recorder, testing::ClientId client,
                                   const std::vector<std::uint16_t>& ports, const std::string& key,
                                   std::chrono::milliseconds timeout) {
  const Deadline deadline = deadline_after(timeout);
  for (std::size_t attempt = 0; SteadyClock::now() < deadline; ++attempt) {
    HttpConnection connection(ports[attempt % ports.size()], timeout);
    const ClassifiedAnswer classified =
        perform_recorded(recorder, client, connection, KvOp::get(key));
    if (classified.completion == Completion::kOk) return classified.result;
    std::this_thread::sleep_for(kFinalReadRetryInterval);
  }
  return std::nullopt;
}

std::vector<std::string> find_lost_writes(const testing::History& history,
                                          const std::map<std::string, KvResult>& final_reads) {
  // Per key, the latest logical time at which some delete may still have
  // taken effect: its completion for an ok delete that deleted, "any time
  // later" for one whose outcome is unknown.
  constexpr testing::LogicalTime kAnyTimeLater = ~testing::LogicalTime{0};
  std::map<std::string, testing::LogicalTime> latest_delete;
  for (const testing::Operation& remove : history.operations()) {
    if (remove.op.kind != KvOpKind::kRemove) continue;
    testing::LogicalTime at = 0;
    if (remove.completion == Completion::kUnknown || remove.completion == Completion::kPending) {
      at = kAnyTimeLater;
    } else if (remove.completion == Completion::kOk &&
               remove.result.kind == KvResultKind::kRemoved && remove.result.deleted) {
      at = remove.complete_time;
    }
    testing::LogicalTime& latest = latest_delete[remove.op.key];
    latest = std::max(latest, at);
  }
  std::vector<std::string> lost;
  for (const testing::Operation& write : history.operations()) {
    if (write.op.kind != KvOpKind::kSet || write.completion != Completion::kOk ||
        write.result.kind != KvResultKind::kWritten) {
      continue;
    }
    const auto final = final_reads.find(write.op.key);
    if (final == final_reads.end()) continue;
    if (final->second.kind == KvResultKind::kFound) {
      if (write.result.version > final->second.version) {
        lost.push_back(
            fmt::format("{}: acknowledged with version {}, but the final read found "
                        "version {}",
                        testing::to_string(write), write.result.version, final->second.version));
      }
      continue;
    }
    // Absent at the end: some delete must be able to come after the write.
    const auto latest = latest_delete.find(write.op.key);
    if (latest == latest_delete.end() || latest->second <= write.invoke_time) {
      lost.push_back(
          fmt::format("{}: acknowledged, but the final read found the key absent and no "
                      "delete could have come after the write",
                      testing::to_string(write)));
    }
  }
  return lost;
}

}  // namespace nodenomad::process_testing
