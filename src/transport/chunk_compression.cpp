// zstd behind the envelope codec (chunk_compression.hpp).
#include "transport/chunk_compression.hpp"

#include <zstd.h>

#include <new>

#include <fmt/format.h>

namespace nodenomad::chunk_compression {
namespace {

// The calling thread's contexts. A context keeps its tables between calls,
// which is what makes small frames cheap; it is sized by the largest
// parameters used so far (the level, and the input for compression).
class ThreadContexts {
 public:
  ThreadContexts() = default;
  ThreadContexts(const ThreadContexts&) = delete;
  ThreadContexts& operator=(const ThreadContexts&) = delete;
  ~ThreadContexts() {
    ZSTD_freeCCtx(compress_);
    ZSTD_freeDCtx(decompress_);
  }

  // Null only if zstd could not allocate.
  ZSTD_CCtx* compress() {
    if (compress_ == nullptr) compress_ = ZSTD_createCCtx();
    return compress_;
  }
  ZSTD_DCtx* decompress() {
    if (decompress_ == nullptr) decompress_ = ZSTD_createDCtx();
    return decompress_;
  }

 private:
  ZSTD_CCtx* compress_ = nullptr;
  ZSTD_DCtx* decompress_ = nullptr;
};

ThreadContexts& thread_contexts() {
  thread_local ThreadContexts contexts;
  return contexts;
}

constexpr std::size_t kMagicBytes = 4;

// Reads the frame's header and checks it against `raw_bytes` without
// decompressing anything.
Status check_frame(std::string_view frame, std::uint64_t raw_bytes) {
  // A zstd frame, not a skippable one (RFC 8878, 3.1.1), with at least its
  // header descriptor after the magic number.
  std::uint32_t magic = 0;
  for (std::size_t i = 0; i < kMagicBytes && i < frame.size(); ++i) {
    magic |= std::uint32_t{static_cast<unsigned char>(frame[i])} << (8 * i);
  }
  if (frame.size() <= kMagicBytes || magic != ZSTD_MAGICNUMBER) {
    return Status::corruption(fmt::format("the {} bytes are not a zstd frame", frame.size()));
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) {
    return Status::corruption(
        fmt::format("the {} bytes are not a zstd frame header", frame.size()));
  }
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Status::corruption("the zstd frame does not declare its decompressed size");
  }
  if (declared != raw_bytes) {
    return Status::corruption(fmt::format(
        "the zstd frame declares {} decompressed bytes, the envelope {}", declared, raw_bytes));
  }
  // Bit 2 of the header descriptor (RFC 8878, 3.1.1.1.1) says the frame
  // ends with a checksum of its content, which zstd then verifies.
  constexpr unsigned char kContentChecksumFlag = 1u << 2;
  if ((static_cast<unsigned char>(frame[kMagicBytes]) & kContentChecksumFlag) == 0) {
    return Status::corruption("the zstd frame carries no content checksum");
  }
  // Walks the block headers only: a frame cut short, or another frame
  // after it, is refused here.
  const std::size_t frame_bytes = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_bytes) != 0) {
    return Status::corruption(fmt::format("the zstd frame of {} bytes is cut short or damaged ({})",
                                          frame.size(), ZSTD_getErrorName(frame_bytes)));
  }
  if (frame_bytes != frame.size()) {
    return Status::corruption(
        fmt::format("{} bytes follow the zstd frame", frame.size() - frame_bytes));
  }
  return Status::ok();
}

}  // namespace

bool compress_at_most(std::string_view raw, int level, std::size_t max_bytes, std::string& out) {
  ZSTD_CCtx* context = thread_contexts().compress();
  if (context == nullptr) return false;
  // A call that failed with dstSize_tooSmall leaves its session open, and
  // an open session refuses most parameters: end it first. Parameters
  // stick to the context; ZSTD_compress2 writes the content size into the
  // frame header by default.
  if (ZSTD_isError(ZSTD_CCtx_reset(context, ZSTD_reset_session_only)) != 0 ||
      ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)) != 0 ||
      ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)) != 0) {
    return false;
  }
  out.resize(max_bytes);
  // With a destination smaller than ZSTD_compressBound(), zstd stops with
  // dstSize_tooSmall as soon as the frame outgrows it.
  const std::size_t written =
      ZSTD_compress2(context, out.data(), out.size(), raw.data(), raw.size());
  if (ZSTD_isError(written) != 0) return false;
  out.resize(written);
  return true;
}

Status decompress_exactly(std::string_view frame, std::uint64_t raw_bytes, std::string& out) {
  if (Status header = check_frame(frame, raw_bytes); !header.is_ok()) return header;
  ZSTD_DCtx* context = thread_contexts().decompress();
  // As for any other allocation of the decoder: out of memory throws.
  if (context == nullptr) throw std::bad_alloc();
  out.resize(static_cast<std::size_t>(raw_bytes));
  // One-shot decompression writes into `out` only (no window buffer of its
  // own), and refuses to write past its end.
  const std::size_t produced =
      ZSTD_decompressDCtx(context, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(produced) != 0) {
    return Status::corruption(
        fmt::format("the zstd frame is damaged ({})", ZSTD_getErrorName(produced)));
  }
  if (produced != raw_bytes) {
    return Status::corruption(
        fmt::format("the zstd frame produced {} bytes, not the declared {}", produced, raw_bytes));
  }
  return Status::ok();
}

int min_level() { return ZSTD_minCLevel(); }
int max_level() { return ZSTD_maxCLevel(); }

}  // namespace nodenomad::chunk_compression
