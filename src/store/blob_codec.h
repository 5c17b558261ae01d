#pragma once
// Schema 4's envelope of the packed blobs (thread_pack.data, exact_sample.waits and .edges): the
// layouts of store/thread_pack.h, compressed with zstd where that makes them smaller. The first
// byte says how the rest is stored:
//   0: as is (a blob too small to gain from compression);
//   1: one zstd frame (RFC 8878) that records its decompressed size.
// Decoding is defensive: an unknown codec, a frame that does not decode, or one that claims more
// than kMaxBlobBytes is refused (nullopt), never read past, never allocated beyond that bound.
//
// Thread-safety: a BlobEncoder or BlobDecoder is used by one thread (each keeps a zstd context,
// reused from blob to blob, which is what makes a thousand small blobs cheap).

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace chokepoint::store {

// The largest decompressed blob a reader accepts: 64 MiB, some thousand times a tick of 1,000
// busy threads (about 18 KiB of thread rows), far below what would exhaust a reader's memory.
inline constexpr std::size_t kMaxBlobBytes = std::size_t{64} << 20;

class BlobEncoder {
 public:
  BlobEncoder();
  ~BlobEncoder();
  BlobEncoder(const BlobEncoder&) = delete;
  BlobEncoder& operator=(const BlobEncoder&) = delete;

  // The envelope of `raw`: compressed when that is smaller, as is otherwise.
  std::string encode(std::string_view raw);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class BlobDecoder {
 public:
  BlobDecoder();
  ~BlobDecoder();
  BlobDecoder(const BlobDecoder&) = delete;
  BlobDecoder& operator=(const BlobDecoder&) = delete;

  // The raw blob inside an envelope; nullopt when it is empty, of an unknown codec, damaged, or
  // larger than kMaxBlobBytes.
  std::optional<std::string> decode(std::string_view envelope);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chokepoint::store
