#include "log_store/file_log_store_format.hpp"

#include <fmt/format.h>

#include <charconv>

namespace nodenomad::file_log_store_format {

namespace {

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) { put_le(out, v, 8); }

void put_string(std::string& out, std::string_view s) {
  NN_ASSERT(s.size() <= UINT32_MAX, "string of ", s.size(), " bytes in a log record");
  put_le(out, s.size(), 4);
  out.append(s);
}

void put_ids(std::string& out, const std::vector<NodeId>& ids) {
  NN_ASSERT(ids.size() <= UINT32_MAX, "list of ", ids.size(), " node ids in a log record");
  put_le(out, ids.size(), 4);
  for (const NodeId& id : ids) put_string(out, id.str());
}

void put_hard_state(std::string& out, const HardState& state) {
  put_u64(out, state.term.value());
  put_string(out, state.vote.str());
  put_u64(out, state.commit.value());
}

void put_snapshot(std::string& out, const SnapshotMeta& meta) {
  put_u64(out, meta.index.value());
  put_u64(out, meta.term.value());
  const ConfState& conf = meta.conf_state;
  put_ids(out, conf.voters);
  put_ids(out, conf.learners);
  put_ids(out, conf.voters_outgoing);
  put_ids(out, conf.learners_next);
  put_u8(out, conf.auto_leave ? 1 : 0);
}

// Reads fields off the front of a payload. The first short read marks the
// reader bad; later reads return zeros, and the caller checks ok() once.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}

  bool ok() const { return ok_; }
  bool empty() const { return rest_.empty(); }
  std::string_view rest() const { return rest_; }

  std::uint64_t le(int bytes) {
    if (!take(static_cast<std::size_t>(bytes))) return 0;
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(taken_[i]);
    return v;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint64_t u64() { return le(8); }
  std::string_view string() {
    const auto length = static_cast<std::size_t>(le(4));
    return take(length) ? taken_ : std::string_view();
  }
  std::vector<NodeId> ids() {
    const auto count = static_cast<std::size_t>(le(4));
    std::vector<NodeId> out;
    // Each id takes at least its 4-byte length, so a count beyond that is
    // corruption and must not size an allocation.
    if (count > rest_.size() / 4) {
      ok_ = false;
      return out;
    }
    out.reserve(count);
    for (std::size_t i = 0; i < count && ok_; ++i) out.emplace_back(std::string(string()));
    return out;
  }
  HardState hard_state() {
    HardState state;
    state.term = Term(u64());
    state.vote = NodeId(std::string(string()));
    state.commit = LogIndex(u64());
    return state;
  }
  SnapshotMeta snapshot() {
    SnapshotMeta meta;
    meta.index = LogIndex(u64());
    meta.term = Term(u64());
    meta.conf_state.voters = ids();
    meta.conf_state.learners = ids();
    meta.conf_state.voters_outgoing = ids();
    meta.conf_state.learners_next = ids();
    const std::uint8_t auto_leave = u8();
    if (auto_leave > 1) ok_ = false;
    meta.conf_state.auto_leave = auto_leave == 1;
    return meta;
  }

 private:
  bool take(std::size_t n) {
    if (!ok_ || rest_.size() < n) {
      ok_ = false;
      return false;
    }
    taken_ = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }

  std::string_view rest_;
  std::string_view taken_;
  bool ok_ = true;
};

Status malformed(std::string_view what) {
  return Status::corruption(fmt::format("malformed {} record", what));
}

Result<Record> decode_segment_start(Reader& in) {
  SegmentStart start;
  const auto magic = static_cast<std::uint32_t>(in.le(4));
  start.version = static_cast<std::uint16_t>(in.le(2));
  if (in.ok() && magic != kMagic) {
    return Status::corruption(
        fmt::format("segment start record has magic {:#x}, not {:#x}", magic, kMagic));
  }
  if (in.ok() && start.version != kFormatVersion) {
    return Status::not_supported(
        fmt::format("segment written in log format version {}; this build reads version {}",
                    start.version, kFormatVersion));
  }
  start.seq = in.u64();
  start.last_index = LogIndex(in.u64());
  start.hard_state = in.hard_state();
  start.snapshot = in.snapshot();
  if (!in.ok() || !in.empty()) return malformed("segment start");
  return Record(std::move(start));
}

Result<Record> decode_entry(Reader& in) {
  EntryView entry;
  entry.index = LogIndex(in.u64());
  entry.term = Term(in.u64());
  const std::uint8_t type = in.u8();
  if (!in.ok()) return malformed("entry");
  if (type > static_cast<std::uint8_t>(EntryType::kConfChange)) {
    return Status::corruption(fmt::format("entry record with unknown entry type {}", type));
  }
  entry.type = static_cast<EntryType>(type);
  entry.data = in.rest();
  return Record(entry);
}

}  // namespace

void encode_segment_start(std::string& out, const SegmentStart& start) {
  put_u8(out, static_cast<std::uint8_t>(RecordType::kSegmentStart));
  put_le(out, kMagic, 4);
  put_le(out, start.version, 2);
  put_u64(out, start.seq);
  put_u64(out, start.last_index.value());
  put_hard_state(out, start.hard_state);
  put_snapshot(out, start.snapshot);
}

void encode_entry(std::string& out, const Entry& entry) {
  put_u8(out, static_cast<std::uint8_t>(RecordType::kEntry));
  put_u64(out, entry.index.value());
  put_u64(out, entry.term.value());
  put_u8(out, static_cast<std::uint8_t>(entry.type));
  out.append(entry.data);
}

void encode_hard_state(std::string& out, const HardState& state) {
  put_u8(out, static_cast<std::uint8_t>(RecordType::kHardState));
  put_hard_state(out, state);
}

void encode_truncate(std::string& out, LogIndex from) {
  put_u8(out, static_cast<std::uint8_t>(RecordType::kTruncate));
  put_u64(out, from.value());
}

void encode_compact(std::string& out, const SnapshotMeta& meta) {
  put_u8(out, static_cast<std::uint8_t>(RecordType::kCompact));
  put_snapshot(out, meta);
}

void encode_install_snapshot(std::string& out, const SnapshotMeta& meta) {
  put_u8(out, static_cast<std::uint8_t>(RecordType::kInstallSnapshot));
  put_snapshot(out, meta);
}

Result<Record> decode(std::string_view payload) {
  Reader in(payload);
  const std::uint8_t type = in.u8();
  if (!in.ok()) return Status::corruption("empty record payload");
  switch (static_cast<RecordType>(type)) {
    case RecordType::kSegmentStart: return decode_segment_start(in);
    case RecordType::kEntry: return decode_entry(in);
    case RecordType::kHardState: {
      HardState state = in.hard_state();
      if (!in.ok() || !in.empty()) return malformed("hard state");
      return Record(std::move(state));
    }
    case RecordType::kTruncate: {
      const LogIndex from(in.u64());
      if (!in.ok() || !in.empty()) return malformed("truncate");
      return Record(TruncateRecord{from});
    }
    case RecordType::kCompact:
    case RecordType::kInstallSnapshot: {
      SnapshotMeta meta = in.snapshot();
      if (!in.ok() || !in.empty()) return malformed("snapshot");
      if (static_cast<RecordType>(type) == RecordType::kCompact) {
        return Record(CompactRecord{std::move(meta)});
      }
      return Record(InstallSnapshotRecord{std::move(meta)});
    }
  }
  return Status::corruption(fmt::format("unknown record type {}", type));
}

Result<std::string_view> unframe(std::string_view framed) {
  if (framed.size() < record::kHeaderBytes) {
    return Status::corruption(
        fmt::format("record of {} bytes is shorter than its header", framed.size()));
  }
  // The header as record_format.hpp draws it: length u32 | header_sum u32 |
  // payload_sum u64.
  Reader in(framed);
  const auto length = static_cast<std::uint32_t>(in.le(4));
  const auto header_sum = static_cast<std::uint32_t>(in.le(4));
  const std::uint64_t payload_sum = in.u64();
  NN_ASSERT(in.ok() && framed.size() - in.rest().size() == record::kHeaderBytes,
            "record header layout out of step with record_format.hpp");
  if (header_sum != record::header_checksum(length)) {
    return Status::corruption("record header checksum mismatch");
  }
  if (length != in.rest().size()) {
    return Status::corruption(fmt::format(
        "record header says {} payload bytes where {} were expected", length, in.rest().size()));
  }
  if (record::checksum(in.rest()) != payload_sum) {
    return Status::corruption("record checksum mismatch");
  }
  return in.rest();
}

std::string segment_file_name(std::uint64_t seq) { return fmt::format("log-{:020}.seg", seq); }

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) {
  constexpr std::string_view kPrefix = "log-";
  constexpr std::string_view kSuffix = ".seg";
  constexpr std::size_t kDigits = 20;
  if (name.size() != kPrefix.size() + kDigits + kSuffix.size()) return std::nullopt;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return std::nullopt;
  const std::string_view digits = name.substr(kPrefix.size(), kDigits);
  std::uint64_t seq = 0;
  const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (err != std::errc() || end != digits.data() + digits.size() || seq == 0) return std::nullopt;
  return seq;
}

}  // namespace nodenomad::file_log_store_format
