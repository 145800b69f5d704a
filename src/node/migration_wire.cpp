// Encoding of the migration records and calls (layouts in migration_wire.hpp).
// One field list per structure, walked by an encoder and a decoder alike, so
// the two can never disagree on the order.
#include "node/migration_wire.hpp"

#include <fmt/format.h>

#include <type_traits>

#include "raft/byte_io.hpp"

namespace nodenomad::node {

namespace {

constexpr std::uint8_t kFormat = 1;
// Bounds on decoded lists (each also bounded by the bytes that remain).
constexpr std::uint64_t kMaxListItems = 1u << 20;

using raft_io::ByteReader;
using raft_io::ByteWriter;

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T, std::size_t N>
struct IsVector<std::array<T, N>> : std::false_type {};

class Encoder {
 public:
  explicit Encoder(std::string& out) : w_(out) {}
  template <typename T>
  void operator()(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      w_.u8(v ? 1 : 0);
    } else if constexpr (std::is_enum_v<T>) {
      w_.u8(static_cast<std::uint8_t>(v));
    } else if constexpr (std::is_integral_v<T>) {
      w_.varint(static_cast<std::uint64_t>(v));
    } else if constexpr (std::is_same_v<T, double>) {
      w_.varint(static_cast<std::uint64_t>(v * 1000.0));
    } else if constexpr (std::is_same_v<T, std::string>) {
      w_.bytes(v);
    } else if constexpr (std::is_same_v<T, NodeId>) {
      w_.bytes(v.str());
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      w_.u8(v ? 1 : 0);
      if (v) (*this)(*v);
    } else if constexpr (IsVector<T>::value) {
      w_.varint(v.size());
      for (const auto& item : v) (*this)(item);
    } else if constexpr (requires { v.size(); v[0]; }) {  // std::array
      for (const auto& item : v) (*this)(item);
    } else {
      w_.varint(v.value());  // strong integer ids
    }
  }

 private:
  ByteWriter w_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : r_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && r_.done(); }

  template <typename T>
  void operator()(T& v) {
    if (!ok_) return;
    if constexpr (std::is_same_v<T, bool>) {
      std::uint8_t b = 0;
      ok_ = r_.u8(b) && b <= 1;
      v = b == 1;
    } else if constexpr (std::is_enum_v<T>) {
      std::uint8_t b = 0;
      ok_ = r_.u8(b);
      v = static_cast<T>(b);
    } else if constexpr (std::is_integral_v<T>) {
      std::uint64_t x = 0;
      ok_ = r_.varint(x) && x <= static_cast<std::uint64_t>(std::numeric_limits<T>::max());
      v = static_cast<T>(x);
    } else if constexpr (std::is_same_v<T, double>) {
      std::uint64_t x = 0;
      ok_ = r_.varint(x);
      v = static_cast<double>(x) / 1000.0;
    } else if constexpr (std::is_same_v<T, std::string>) {
      ok_ = r_.string(v);
    } else if constexpr (std::is_same_v<T, NodeId>) {
      std::string s;
      ok_ = r_.string(s);
      v = NodeId(std::move(s));
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      bool present = false;
      (*this)(present);
      if (!ok_) return;
      if (!present) {
        v.reset();
        return;
      }
      double d = 0;
      (*this)(d);
      v = d;
    } else if constexpr (IsVector<T>::value) {
      std::uint64_t n = 0;
      ok_ = r_.count(n, 1) && n <= kMaxListItems;
      if (!ok_) return;
      v.clear();
      v.resize(static_cast<std::size_t>(n));
      for (auto& item : v) (*this)(item);
    } else if constexpr (requires { v.size(); v[0]; }) {
      for (auto& item : v) (*this)(item);
    } else {
      std::uint64_t x = 0;
      ok_ = r_.varint(x);
      v = T(x);
    }
  }

 private:
  ByteReader r_;
  bool ok_ = true;
};

// --- the field lists ---

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, MigrationRecord>
{
  c(r.id), c(r.batch_id), c(r.shard), c(r.source), c(r.target), c(r.expected_epoch), c(r.stage);
  c(r.started), c(r.rolling_back), c(r.cancel_requested), c(r.paused), c(r.bandwidth_bytes_per_s);
  c(r.created_ms), c(r.finished_ms), c(r.stage_started_ms), c(r.stage_ms), c(r.bytes_total), c(r.keys_total);
  c(r.bytes_done), c(r.verify_mismatches), c(r.bytes_freed), c(r.error);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, ShardCall>
{
  c(r.op_id), c(r.shard), c(r.action), c(r.source), c(r.target), c(r.bandwidth_bytes_per_s);
  c(r.paused);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, ShardReport>
{
  c(r.voters), c(r.learners), c(r.joint), c(r.last_index), c(r.commit), c(r.target_match);
  c(r.target_snapshotting), c(r.snapshot_index), c(r.snapshot_bytes_acked), c(r.keys), c(r.bytes);
  c(r.verify), c(r.verify_index), c(r.verify_root), c(r.verify_mismatches), c(r.note);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, TargetCall>
{
  c(r.op_id), c(r.shard), c(r.action), c(r.index), c(r.buckets), c(r.chunks), c(r.round);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, TargetReport>
{
  c(r.applied), c(r.digest), c(r.round);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, AdminCall>
{
  c(r.action), c(r.shards), c(r.source), c(r.target), c(r.op_id), c(r.control);
  c(r.bandwidth_bytes_per_s), c(r.sources), c(r.targets), c(r.epochs);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, MigrationBatch>
{
  c(r.id), c(r.operations);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, MigrationProgress>
{
  c(r.bytes_total), c(r.bytes_done), c(r.keys_total), c(r.keys_done), c(r.percent);
  c(r.rate_bytes_per_s), c(r.eta_s);
}

template <typename C, typename R>
void fields(C& c, R& r)
  requires std::is_same_v<std::remove_const_t<R>, MigrationStatus>
{
  c(r.id), c(r.batch_id), c(r.shard), c(r.source), c(r.target), c(r.stage), c(r.queued);
  c(r.paused), c(r.cancel_requested), c(r.bandwidth_bytes_per_s);
  fields(c, r.progress);
  c(r.started_at_ms), c(r.finished_at_ms), c(r.stage_ms), c(r.verify_mismatches);
  c(r.bytes_freed), c(r.error);
}

template <typename T>
std::string encode(const T& value) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  Encoder e(out);
  fields(e, value);
  return out;
}

template <typename T>
Result<T> decode(std::string_view bytes, std::string_view what) {
  if (bytes.empty() || static_cast<std::uint8_t>(bytes[0]) != kFormat) {
    return Status::corruption(fmt::format("{}: unknown format version", what));
  }
  Decoder d(bytes.substr(1));
  T value;
  fields(d, value);
  if (!d.done()) return Status::corruption(fmt::format("{}: malformed or truncated", what));
  return value;
}

bool stage_valid(MigrationStage s) {
  const auto v = static_cast<std::uint8_t>(s);
  return v >= 1 && v <= 8;
}

}  // namespace

std::string encode_migration_record(const MigrationRecord& record) { return encode(record); }
Result<MigrationRecord> decode_migration_record(std::string_view bytes) {
  NN_ASSIGN_OR_RETURN(MigrationRecord r, decode<MigrationRecord>(bytes, "migration record"));
  if (!stage_valid(r.stage)) return Status::corruption("migration record: unknown stage");
  return r;
}

std::string encode_shard_call(const ShardCall& call) { return encode(call); }
Result<ShardCall> decode_shard_call(std::string_view bytes) {
  NN_ASSIGN_OR_RETURN(ShardCall c, decode<ShardCall>(bytes, "migration shard call"));
  const auto a = static_cast<std::uint8_t>(c.action);
  if (a < 1 || a > 6) return Status::corruption("migration shard call: unknown action");
  return c;
}

std::string encode_shard_report(const ShardReport& report) { return encode(report); }
Result<ShardReport> decode_shard_report(std::string_view bytes) {
  NN_ASSIGN_OR_RETURN(ShardReport r, decode<ShardReport>(bytes, "migration shard report"));
  if (static_cast<std::uint8_t>(r.verify) > 3) {
    return Status::corruption("migration shard report: unknown verify state");
  }
  return r;
}

std::string encode_target_call(const TargetCall& call) { return encode(call); }
Result<TargetCall> decode_target_call(std::string_view bytes) {
  NN_ASSIGN_OR_RETURN(TargetCall c, decode<TargetCall>(bytes, "migration target call"));
  const auto a = static_cast<std::uint8_t>(c.action);
  if (a < 1 || a > 4) return Status::corruption("migration target call: unknown action");
  return c;
}

std::string encode_target_report(const TargetReport& report) { return encode(report); }
Result<TargetReport> decode_target_report(std::string_view bytes) {
  return decode<TargetReport>(bytes, "migration target report");
}

std::string encode_admin_call(const AdminCall& call) { return encode(call); }
Result<AdminCall> decode_admin_call(std::string_view bytes) {
  NN_ASSIGN_OR_RETURN(AdminCall c, decode<AdminCall>(bytes, "migration admin call"));
  const auto a = static_cast<std::uint8_t>(c.action);
  const auto k = static_cast<std::uint8_t>(c.control);
  if (a < 1 || a > 7 || k < 1 || k > 4) {
    return Status::corruption("migration admin call: unknown action or control");
  }
  if (c.action == AdminAction::kExecute &&
      (c.sources.size() != c.shards.size() || c.targets.size() != c.shards.size() ||
       c.epochs.size() != c.shards.size())) {
    return Status::corruption("migration admin call: the plan's lists differ in length");
  }
  return c;
}

std::string encode_migration_batch(const MigrationBatch& batch) { return encode(batch); }
Result<MigrationBatch> decode_migration_batch(std::string_view bytes) {
  return decode<MigrationBatch>(bytes, "migration batch");
}

std::string encode_migration_statuses(const std::vector<MigrationStatus>& statuses) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  Encoder e(out);
  e(statuses.size());
  for (const MigrationStatus& s : statuses) fields(e, s);
  return out;
}

Result<std::vector<MigrationStatus>> decode_migration_statuses(std::string_view bytes) {
  if (bytes.empty() || static_cast<std::uint8_t>(bytes[0]) != kFormat) {
    return Status::corruption("migration statuses: unknown format version");
  }
  Decoder d(bytes.substr(1));
  std::uint64_t n = 0;
  d(n);
  if (!d.ok() || n > bytes.size()) return Status::corruption("migration statuses: bad count");
  std::vector<MigrationStatus> out;
  for (std::uint64_t i = 0; i < n && d.ok(); ++i) {
    MigrationStatus s;
    fields(d, s);
    if (!stage_valid(s.stage)) return Status::corruption("migration statuses: unknown stage");
    out.push_back(std::move(s));
  }
  if (!d.done()) return Status::corruption("migration statuses: malformed or truncated");
  return out;
}

}  // namespace nodenomad::node
