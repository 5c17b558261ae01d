#include "store/blob_codec.h"

#include <zstd.h>

namespace chokepoint::store {
namespace {

constexpr char kStored = 0, kZstd = 1;
// zstd's level 3 (its default). On an hour of 1,000 busy threads (docs/benchmarks.md, schema 4)
// it keeps 69% of the thread rows' bytes, 68% of the exact sums' and 56% of the edges' (level 1:
// 71%, 77%, 62%; level 9: 68%, 67%, 52%), for about 0.4 ms of the writer's CPU a tick.
constexpr int kLevel = 3;

}  // namespace

struct BlobEncoder::Impl {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  std::string out;
  ~Impl() { ZSTD_freeCCtx(ctx); }
};

BlobEncoder::BlobEncoder() : impl_(std::make_unique<Impl>()) {
  ZSTD_CCtx_setParameter(impl_->ctx, ZSTD_c_compressionLevel, kLevel);
  // The frame records its size, so that the reader can refuse a large one before allocating.
  ZSTD_CCtx_setParameter(impl_->ctx, ZSTD_c_contentSizeFlag, 1);
  // A checksum of the content (4 bytes a frame): a damaged frame is refused, not decoded wrong.
  ZSTD_CCtx_setParameter(impl_->ctx, ZSTD_c_checksumFlag, 1);
}

BlobEncoder::~BlobEncoder() = default;

std::string BlobEncoder::encode(std::string_view raw) {
  std::string& out = impl_->out;
  out.resize(1 + ZSTD_compressBound(raw.size()));
  std::size_t n = 0;
  if (impl_->ctx != nullptr) {
    n = ZSTD_compress2(impl_->ctx, out.data() + 1, out.size() - 1, raw.data(), raw.size());
  }
  if (impl_->ctx == nullptr || ZSTD_isError(n) != 0 || n >= raw.size()) {
    std::string stored;
    stored.reserve(1 + raw.size());
    stored.push_back(kStored);
    stored.append(raw);
    return stored;
  }
  out[0] = kZstd;
  return out.substr(0, 1 + n);
}

struct BlobDecoder::Impl {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  ~Impl() { ZSTD_freeDCtx(ctx); }
};

BlobDecoder::BlobDecoder() : impl_(std::make_unique<Impl>()) {}

BlobDecoder::~BlobDecoder() = default;

std::optional<std::string> BlobDecoder::decode(std::string_view envelope) {
  if (envelope.empty()) return std::nullopt;
  const std::string_view body = envelope.substr(1);
  if (envelope[0] == kStored) return std::string(body);
  if (envelope[0] != kZstd || impl_->ctx == nullptr) return std::nullopt;
  // One frame, which must say its size (the writer's always do): unknown, an error or too
  // large is refused before anything is allocated.
  const unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
  if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > kMaxBlobBytes) {
    return std::nullopt;
  }
  const std::size_t frame = ZSTD_findFrameCompressedSize(body.data(), body.size());
  if (ZSTD_isError(frame) != 0 || frame != body.size()) return std::nullopt;  // trailing bytes
  std::string raw(static_cast<std::size_t>(size), '\0');
  const std::size_t n =
      ZSTD_decompressDCtx(impl_->ctx, raw.data(), raw.size(), body.data(), body.size());
  if (ZSTD_isError(n) != 0 || n != raw.size()) return std::nullopt;
  return raw;
}

}  // namespace chokepoint::store
