// codec_bench: the peer message codec (encode_envelope / decode_envelope,
// the hand-written varint codec of nodenomad/transport.hpp) against
// Boost.Serialization's binary archive on the same Envelopes, and what each
// does with a hostile length read from the wire.
//
//   codec_bench [--seconds S] [--repetitions N] [--hostile-bytes N]
//               [--compress-keys N] [--only hostile|throughput|compression]
//               [--quick]
//
// Throughput: for each message shape (a heartbeat; an append of 64 entries
// of 100 B; an append of one 64 KiB entry; a 1 MiB snapshot chunk), each
// codec encodes the same Envelope into a reused buffer, then decodes those
// bytes into a fresh Envelope, each in a loop of doubling batches until
// --seconds have passed. Lines `codec` (per codec, shape and repetition) and
// `codec_compare` (medians over the repetitions, per shape).
//
// Hostile input (`codec_hostile`): a request envelope whose payload length,
// and an append whose entry count, is patched to a huge value in each
// codec's own encoding, then decoded in a child process whose address space
// is capped, so that nothing it allocates can hurt the machine. The child
// reports the decoder's outcome, its peak-RSS growth (getrusage, after the
// peak was reset) and the time it took. --hostile-bytes (default 1 GiB, at
// most 4 GiB) is the size the plausible claims ask for; 2^40 is also tried.
//
// Snapshot chunk compression (`codec_compress`, `codec_compress_summary`):
// the snapshot stream of a StorageEngine holding --compress-keys keys with
// 1 KiB values (random bytes, random letters, JSON-like text; see
// snapshot_stream_data.hpp), cut in 1 MiB chunks, each chunk an envelope:
// encoded and decoded with compression off and at zstd levels -5, -1, 1
// and 3. Figures: raw and wire bytes, the ratio, and MB of chunk data per
// second encoded and decoded. The Boost comparison above runs with
// compression off, so that it compares the codecs. Then the adaptive path
// (`codec_compress_adaptive`, `codec_compress_adaptive_summary`): level 1
// through the per-peer history that stops trying zstd on a transfer that
// does not compress, per chunk once the history has settled, against plain
// level 1.
//
// --only runs one of the three parts (default: all).
//
// The Boost codec is written as NodeNomad would have shipped it: non-intrusive
// serialize() functions, one archive per envelope (envelopes are decoded
// independently; a dropped frame must not break the next), flags no_header
// | no_codecvt | no_tracking, and every struct marked object_serializable
// and track_never so no class information or object ids are written. That
// is the smallest and fastest form binary_oarchive has. docs/benchmarks.md
// explains every field; docs/transport.md draws the conclusion.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <new>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#include "boost_envelope_codec.hpp"

#include <fmt/format.h>

#include "bench_common.hpp"
#include "codec_bench_compress.hpp"
#include "codec_bench_timing.hpp"
#include "nodenomad/transport.hpp"
#include "raft/byte_io.hpp"

namespace nodenomad::codec_bench {
namespace {

using bench::Flags;
using bench::JsonLine;
using bench::Stopwatch;

// --- options ------------------------------------------------------------------

constexpr std::uint64_t kMaxHostileBytes = std::uint64_t{4} << 30;
constexpr std::uint64_t kHugeClaim = std::uint64_t{1} << 40;

struct Options {
  double seconds = 0;  // per timed loop: one codec, one shape, encode or decode
  std::uint64_t repetitions = 0;
  std::uint64_t hostile_bytes = 0;
  std::uint64_t compress_keys = 0;  // keys of 1 KiB in each snapshot stream
  std::string only;                 // empty: every part
};

Options parse_options(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {"seconds", "repetitions", "hostile-bytes", "compress-keys", "only"});
  Options o;
  o.seconds = flags.real("seconds", 0.5, 0.003);
  o.repetitions = flags.number("repetitions", 3, 1);
  o.hostile_bytes = flags.number("hostile-bytes", std::uint64_t{1} << 30, std::uint64_t{64} << 20);
  o.compress_keys = flags.number("compress-keys", 8192, 256);
  if (o.repetitions == 0 || o.seconds <= 0) {
    Flags::usage_error("--repetitions and --seconds must be positive");
  }
  if (o.compress_keys == 0) Flags::usage_error("--compress-keys must be positive");
  o.only = flags.text("only", "");
  if (!o.only.empty() && o.only != "hostile" && o.only != "throughput" &&
      o.only != "compression") {
    Flags::usage_error("--only takes hostile, throughput or compression");
  }
  if (o.hostile_bytes < 1024 || o.hostile_bytes > kMaxHostileBytes) {
    Flags::usage_error("--hostile-bytes must be between 1024 and 4 GiB");
  }
  return o;
}

// --- the message shapes -------------------------------------------------------

// Bytes that are not one repeated value, so nothing can special-case them.
std::string make_payload(std::size_t bytes, std::size_t seed) {
  std::string payload(bytes, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  }
  return payload;
}

Envelope raft_envelope(MessageType type) {
  Envelope e;
  e.from = NodeId("node-1");
  e.to = NodeId("node-2");
  e.group = GroupId(17);
  e.kind = EnvelopeKind::kRaft;
  e.message.type = type;
  e.message.from = e.from;
  e.message.to = e.to;
  e.message.term = Term(42);
  return e;
}

Envelope heartbeat() {
  Envelope e = raft_envelope(MessageType::kHeartbeat);
  e.message.commit = LogIndex(1'234'567);
  e.message.round = 98'765;
  return e;
}

Envelope append(std::size_t entries, std::size_t entry_bytes) {
  Envelope e = raft_envelope(MessageType::kAppend);
  e.message.index = LogIndex(1'234'500);
  e.message.log_term = Term(42);
  e.message.commit = LogIndex(1'234'480);
  for (std::size_t i = 0; i < entries; ++i) {
    e.message.entries.push_back(Entry{Term(42), e.message.index + (i + 1), EntryType::kNormal,
                                      make_payload(entry_bytes, i)});
  }
  return e;
}

Envelope snapshot_chunk(std::size_t bytes) {
  Envelope e = raft_envelope(MessageType::kSnapshot);
  SnapshotChunk& chunk = e.message.snapshot;
  chunk.meta.index = LogIndex(1'200'000);
  chunk.meta.term = Term(41);
  chunk.meta.conf_state.voters = {NodeId("node-1"), NodeId("node-2"), NodeId("node-3")};
  chunk.transfer_id = 7;
  chunk.offset = std::uint64_t{3} << 20;
  chunk.data = make_payload(bytes, 3);
  return e;
}

struct Shape {
  std::string name;
  Envelope envelope;
  std::uint64_t payload_bytes = 0;  // entry and chunk data: what any codec must carry
};

std::vector<Shape> shapes() {
  return {{"heartbeat", heartbeat(), 0},
          {"append_64x100B", append(64, 100), 64 * 100},
          {"append_1x64KiB", append(1, 64 * 1024), 64 * 1024},
          {"snapshot_chunk_1MiB", snapshot_chunk(1 << 20), 1 << 20}};
}

// --- throughput -----------------------------------------------------------------

struct CodecFigures {
  std::uint64_t encoded_bytes = 0;
  LoopTime encode;
  LoopTime decode;
  double roundtrips_per_s() const { return 1e9 / (encode.wall_ns + decode.wall_ns); }
  double roundtrips_per_cpu_s() const { return 1e9 / (encode.cpu_ns + decode.cpu_ns); }
};

// `encode_to(envelope, out)` appends; `decode_sized(bytes)` decodes and
// answers decoded_size(), failing the run on an error. Templates, so neither
// codec pays for an indirect call.
template <typename EncodeTo, typename DecodeSized>
CodecFigures measure(const Envelope& envelope, double seconds, EncodeTo encode_to,
                     DecodeSized decode_sized) {
  CodecFigures f;
  std::string bytes;
  encode_to(envelope, bytes);
  f.encoded_bytes = bytes.size();
  std::string out;
  f.encode = time_calls(seconds, [&] {
    out.clear();
    encode_to(envelope, out);
    g_sink = out.size();
  });
  f.decode = time_calls(seconds, [&] { g_sink = decode_sized(bytes); });
  return f;
}

CodecFigures measure_nodenomad(const Envelope& envelope, double seconds) {
  Result<Envelope> check = decode_envelope(encode_envelope(envelope, kUncompressed));
  if (!check.is_ok() || *check != envelope) bench::fail("the nodenomad codec does not round-trip");
  const auto encode_to = [](const Envelope& e, std::string& out) {
    encode_envelope_to(e, out, kUncompressed);
  };
  return measure(envelope, seconds, encode_to, [](std::string_view bytes) {
    const Result<Envelope> decoded = decode_envelope(bytes);
    if (!decoded.is_ok()) bench::fail(decoded.status().to_string());
    return decoded_size(*decoded);
  });
}

CodecFigures measure_boost(const Envelope& envelope, double seconds) {
  std::string bytes;
  boost_encode_to(envelope, bytes);
  if (boost_decode(bytes) != envelope) bench::fail("the Boost codec does not round-trip");
  const auto encode_to = [](const Envelope& e, std::string& out) { boost_encode_to(e, out); };
  return measure(envelope, seconds, encode_to,
                 [](std::string_view in) { return decoded_size(boost_decode(in)); });
}

void print_figures(std::string_view codec, const Shape& shape, std::uint64_t repetition,
                   const CodecFigures& f) {
  JsonLine("codec")
      .add("codec", codec)
      .add("shape", shape.name)
      .add("repetition", repetition)
      .add("payload_bytes", shape.payload_bytes)
      .add("encoded_bytes", f.encoded_bytes)
      .add("encode_ns", f.encode.wall_ns)
      .add("decode_ns", f.decode.wall_ns)
      .add("encode_cpu_ns", f.encode.cpu_ns)
      .add("decode_cpu_ns", f.decode.cpu_ns)
      .add("roundtrips_per_s", f.roundtrips_per_s())
      .add("roundtrips_per_cpu_s", f.roundtrips_per_cpu_s())
      .add("wire_mb_per_s", f.roundtrips_per_s() * static_cast<double>(f.encoded_bytes) / 1e6)
      .add("wire_mb_per_cpu_s",
           f.roundtrips_per_cpu_s() * static_cast<double>(f.encoded_bytes) / 1e6)
      .add("load_avg_1m", bench::load_average_1min())
      .print();
}

// The median over the repetitions of one figure.
double median_of(const std::vector<CodecFigures>& runs, double (CodecFigures::*figure)() const) {
  std::vector<double> values;
  for (const CodecFigures& f : runs) values.push_back((f.*figure)());
  return bench::summarize(values).median;
}

void print_comparison(const Shape& shape, const std::vector<CodecFigures>& ours,
                      const std::vector<CodecFigures>& boost) {
  const double ours_wall = median_of(ours, &CodecFigures::roundtrips_per_s);
  const double boost_wall = median_of(boost, &CodecFigures::roundtrips_per_s);
  const double ours_cpu = median_of(ours, &CodecFigures::roundtrips_per_cpu_s);
  const double boost_cpu = median_of(boost, &CodecFigures::roundtrips_per_cpu_s);
  const auto ours_bytes = static_cast<double>(ours.front().encoded_bytes);
  const auto boost_bytes = static_cast<double>(boost.front().encoded_bytes);
  JsonLine("codec_compare")
      .add("shape", shape.name)
      .add("repetitions", static_cast<std::uint64_t>(ours.size()))
      .add("nodenomad_roundtrips_per_s", ours_wall)
      .add("boost_roundtrips_per_s", boost_wall)
      .add("nodenomad_speedup", ours_wall / boost_wall)
      .add("nodenomad_roundtrips_per_cpu_s", ours_cpu)
      .add("boost_roundtrips_per_cpu_s", boost_cpu)
      .add("nodenomad_speedup_cpu", ours_cpu / boost_cpu)
      .add("nodenomad_mb_per_cpu_s", ours_cpu * ours_bytes / 1e6)
      .add("boost_mb_per_cpu_s", boost_cpu * boost_bytes / 1e6)
      .add("nodenomad_encoded_bytes", ours.front().encoded_bytes)
      .add("boost_encoded_bytes", boost.front().encoded_bytes)
      .add("boost_size_ratio", boost_bytes / ours_bytes)
      .print();
}

void run_throughput(const Options& o) {
  const std::vector<Shape> all = shapes();
  std::vector<std::vector<CodecFigures>> ours(all.size());
  std::vector<std::vector<CodecFigures>> boost(all.size());
  // Repetitions outermost and the codecs interleaved, so a change in the
  // machine's load falls on both alike.
  for (std::uint64_t rep = 1; rep <= o.repetitions; ++rep) {
    for (std::size_t s = 0; s < all.size(); ++s) {
      ours[s].push_back(measure_nodenomad(all[s].envelope, o.seconds));
      print_figures("nodenomad", all[s], rep, ours[s].back());
      boost[s].push_back(measure_boost(all[s].envelope, o.seconds));
      print_figures("boost_binary", all[s], rep, boost[s].back());
    }
  }
  for (std::size_t s = 0; s < all.size(); ++s) print_comparison(all[s], ours[s], boost[s]);
}

// --- hostile input ------------------------------------------------------------

// What one decode did in an isolated child; the child fills it in a page
// shared with the parent.
struct ChildReport {
  long peak_rss_delta_kb = -1;  // -1: the child never got that far
  double seconds = 0;
  bool peak_reset = false;  // the kernel let the child reset its peak RSS first
  char outcome[480] = {};
};

long max_rss_kb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// The child: caps its address space at what it maps now plus
// `allowance_bytes`, resets its peak RSS (a forked child inherits the
// parent's), decodes, and reports.
[[noreturn]] void child_decode(ChildReport& report, std::uint64_t allowance_bytes,
                               const std::function<std::string()>& decode) {
  std::uint64_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t cap = pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) + allowance_bytes;
  const rlimit limit{cap, cap};
  if (::setrlimit(RLIMIT_AS, &limit) != 0) ::_exit(3);
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5" << std::flush;  // "5": reset the peak RSS to the current RSS
  report.peak_reset = clear_refs.good();
  const long before_kb = max_rss_kb();
  const Stopwatch watch;
  const std::string outcome = decode();
  report.seconds = watch.seconds();
  report.peak_rss_delta_kb = max_rss_kb() - before_kb;
  outcome.copy(report.outcome, sizeof report.outcome - 1);
  ::_exit(0);
}

// Runs `decode` in a child process (see child_decode) and answers its
// outcome, or how the child died.
ChildReport run_isolated(std::uint64_t allowance_bytes,
                         const std::function<std::string()>& decode) {
  void* page = ::mmap(nullptr, sizeof(ChildReport), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) bench::fail("mmap a shared page");
  ChildReport* shared = new (page) ChildReport;
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) bench::fail("fork");
  if (pid == 0) child_decode(*shared, allowance_bytes, decode);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) bench::fail("waitpid");
  ChildReport report = *shared;
  ::munmap(page, sizeof(ChildReport));
  if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
    const std::string death = WIFSIGNALED(status)
                                  ? fmt::format("killed by signal {}", WTERMSIG(status))
                                  : fmt::format("child exited with status {}", WEXITSTATUS(status));
    report.outcome[death.copy(report.outcome, sizeof report.outcome - 1)] = '\0';
  }
  return report;
}

std::string boost_outcome(std::string_view bytes) {
  try {
    (void)boost_decode(bytes);
    return "decoded";
  } catch (const boost::archive::archive_exception& e) {
    return fmt::format("archive_exception: {}", e.what());
  } catch (const std::bad_alloc&) {
    return "std::bad_alloc";
  } catch (const std::length_error& e) {
    return fmt::format("std::length_error: {}", e.what());
  } catch (const std::exception& e) {
    return fmt::format("std::exception: {}", e.what());
  }
}

std::string nodenomad_outcome(std::string_view bytes) {
  const Result<Envelope> decoded = decode_envelope(bytes);
  if (decoded.is_ok()) return "decoded";
  const Status& status = decoded.status();
  return fmt::format("{}: {}", status_code_name(status.code()), status.message());
}

struct HostileInput {
  std::string boost_bytes;
  std::string nodenomad_bytes;
};

// Both encodings of `e` with one length or count, now `expected`, set to
// `claimed`. In Boost's it is the native size_t at `boost_at`; in ours the
// one-byte varint at `ours_at`, rewritten as long as `claimed` needs.
HostileInput patch_claim(const Envelope& e, std::size_t boost_at, std::size_t ours_at,
                         std::uint64_t expected, std::uint64_t claimed) {
  HostileInput in;
  boost_encode_to(e, in.boost_bytes);
  std::size_t old_value = 0;
  std::memcpy(&old_value, in.boost_bytes.data() + boost_at, sizeof old_value);
  const std::size_t new_value = static_cast<std::size_t>(claimed);
  std::memcpy(in.boost_bytes.data() + boost_at, &new_value, sizeof new_value);
  const std::string ours = encode_envelope(e);
  if (old_value != expected || static_cast<std::uint8_t>(ours[ours_at]) != expected) {
    bench::fail("an encoding's layout changed: the patched field is not where expected");
  }
  in.nodenomad_bytes = ours.substr(0, ours_at);
  raft_io::ByteWriter(in.nodenomad_bytes).varint(claimed);
  in.nodenomad_bytes += ours.substr(ours_at + 1);
  return in;
}

// A request envelope whose payload "hello" claims to be `claimed` bytes
// long: both encodings end with the length, then the payload.
HostileInput hostile_payload_length(std::uint64_t claimed) {
  Envelope e;
  e.from = NodeId("node-1");
  e.to = NodeId("node-2");
  e.group = GroupId(1);
  e.kind = EnvelopeKind::kRequest;
  e.request_id = 7;
  e.payload = "hello";
  std::string boost_bytes;
  boost_encode_to(e, boost_bytes);
  return patch_claim(e, boost_bytes.size() - e.payload.size() - sizeof(std::size_t),
                     encode_envelope(e).size() - e.payload.size() - 1, e.payload.size(), claimed);
}

// An append with one entry that claims `claimed` entries. Both encodings
// write the count right after the message's context, set to a marker.
HostileInput hostile_entry_count(std::uint64_t claimed) {
  Envelope e = raft_envelope(MessageType::kAppend);
  const std::string marker = "CTX!";
  e.message.context = marker;
  e.message.entries.push_back(Entry{Term(42), LogIndex(1), EntryType::kNormal, "hello"});
  std::string boost_bytes;
  boost_encode_to(e, boost_bytes);
  return patch_claim(e, boost_bytes.find(marker) + marker.size(),
                     encode_envelope(e).find(marker) + marker.size(), 1, claimed);
}

std::string overcommit_mode() {
  std::ifstream in("/proc/sys/vm/overcommit_memory");
  std::string mode;
  in >> mode;
  return mode.empty() ? "unknown" : mode;
}

void run_hostile_case(std::string_view name, std::string_view field, std::uint64_t claimed,
                      std::uint64_t claimed_bytes, const HostileInput& in,
                      std::uint64_t allowance_bytes) {
  const ChildReport boost =
      run_isolated(allowance_bytes, [&] { return boost_outcome(in.boost_bytes); });
  const ChildReport ours =
      run_isolated(allowance_bytes, [&] { return nodenomad_outcome(in.nodenomad_bytes); });
  const std::string_view ours_outcome(ours.outcome);  // "code: message"
  const std::size_t colon = std::min(ours_outcome.find(": "), ours_outcome.size());
  const auto mb = [](double bytes) { return bytes / (1 << 20); };
  JsonLine("codec_hostile")
      .add("case", name)
      .add("field", field)
      .add("claimed", claimed)
      .add("claimed_mb", mb(static_cast<double>(claimed_bytes)))
      .add("boost_input_bytes", static_cast<std::uint64_t>(in.boost_bytes.size()))
      .add("boost_outcome", std::string_view(boost.outcome))
      .add("boost_peak_rss_delta_mb", static_cast<double>(boost.peak_rss_delta_kb) / 1024)
      .add("boost_seconds", boost.seconds)
      .add("nodenomad_input_bytes", static_cast<std::uint64_t>(in.nodenomad_bytes.size()))
      .add("nodenomad_outcome", ours_outcome.substr(0, colon))
      .add("nodenomad_message", ours_outcome.substr(std::min(colon + 2, ours_outcome.size())))
      .add("nodenomad_peak_rss_delta_mb", static_cast<double>(ours.peak_rss_delta_kb) / 1024)
      .add("nodenomad_seconds", ours.seconds)
      .add("address_space_allowance_mb", mb(static_cast<double>(allowance_bytes)))
      .add("peak_rss_reset", boost.peak_reset && ours.peak_reset)
      .add("overcommit_memory", overcommit_mode())
      .print();
}

// The plausible claims (--hostile-bytes) must fit the child's allowance; the
// 2^40 ones must not, whatever the kernel's overcommit policy.
void run_hostile(const Options& o) {
  const std::uint64_t allowance = o.hostile_bytes + (std::uint64_t{512} << 20);
  const std::uint64_t entry_count = o.hostile_bytes / sizeof(Entry);
  run_hostile_case("hostile_length", "request payload length", o.hostile_bytes, o.hostile_bytes,
                   hostile_payload_length(o.hostile_bytes), allowance);
  run_hostile_case("hostile_length", "request payload length", kHugeClaim, kHugeClaim,
                   hostile_payload_length(kHugeClaim), allowance);
  run_hostile_case("hostile_count", "append entry count", entry_count, entry_count * sizeof(Entry),
                   hostile_entry_count(entry_count), allowance);
  run_hostile_case("hostile_count", "append entry count", kHugeClaim, kHugeClaim * sizeof(Entry),
                   hostile_entry_count(kHugeClaim), allowance);
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  JsonLine("codec_setup")
      .add("boost_version", BOOST_LIB_VERSION)
      .add("boost_archive_library_version",
           static_cast<std::uint64_t>(boost::archive::BOOST_ARCHIVE_VERSION()))
      .add("archive_flags", "no_header|no_codecvt|no_tracking")
      .add("sizeof_entry", static_cast<std::uint64_t>(sizeof(Entry)))
      .add("seconds_per_loop", o.seconds)
      .print();
  // First, while the process is small: the children inherit its mappings.
  const auto wanted = [&](std::string_view part) { return o.only.empty() || o.only == part; };
  if (wanted("hostile")) run_hostile(o);
  if (wanted("throughput")) run_throughput(o);
  if (wanted("compression")) run_compression(o.seconds, o.repetitions, o.compress_keys);
  return 0;
}

}  // namespace
}  // namespace nodenomad::codec_bench

int main(int argc, char** argv) { return nodenomad::codec_bench::run(argc, argv); }
