#include "store/blob_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace chokepoint::store {
namespace {

// Bytes like a tick's thread rows: a repeated shape with varying counters.
std::string rows_like(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += "\x02\x01";
    s.push_back(static_cast<char>(0x80 | (i * 37 % 128)));
    s.push_back(static_cast<char>(i * 11 % 128));
    s += "\x00\x00";
  }
  return s;
}

TEST(BlobCodec, SmallBlobsAreStoredAndLargeOnesCompressedBothRoundTrip) {
  BlobEncoder enc;
  BlobDecoder dec;
  for (const std::string& raw : {std::string(), std::string("\x02\x01\x05", 3), rows_like(3000)}) {
    const std::string env = enc.encode(raw);
    auto back = dec.decode(env);
    ASSERT_TRUE(back) << raw.size();
    EXPECT_EQ(*back, raw);
    if (raw.size() < 8) {
      EXPECT_EQ(env[0], 0) << "a tiny blob is stored as is";
      EXPECT_EQ(env.size(), raw.size() + 1);
    } else {
      EXPECT_EQ(env[0], 1) << "zstd";
      EXPECT_LT(env.size(), raw.size() / 2);
    }
  }
}

TEST(BlobCodec, DamagedUnknownOrOversizedEnvelopesAreRefused) {
  BlobEncoder enc;
  BlobDecoder dec;
  const std::string env = enc.encode(rows_like(3000));
  ASSERT_EQ(env[0], 1);
  EXPECT_FALSE(dec.decode(""));                             // no codec byte
  EXPECT_FALSE(dec.decode(std::string("\x02", 1)));         // an unknown codec
  EXPECT_FALSE(dec.decode(env.substr(0, env.size() - 1)));  // cut
  EXPECT_FALSE(dec.decode(env + "x"));                      // trailing bytes
  EXPECT_FALSE(dec.decode(env.substr(0, 1)));               // a codec byte alone
  // Any byte of the frame changed: refused (the checksum), never decoded to other bytes.
  for (std::size_t i = 1; i < env.size(); ++i) {
    std::string bad = env;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    auto back = dec.decode(bad);
    EXPECT_FALSE(back.has_value() && *back != rows_like(3000)) << i;
  }
  // A frame that says it holds more than kMaxBlobBytes is refused before allocating it.
  const std::string big = enc.encode(std::string(kMaxBlobBytes + 1, '\0'));
  ASSERT_EQ(big[0], 1);
  EXPECT_LT(big.size(), 10'000u);
  EXPECT_FALSE(dec.decode(big));
  // The decoder goes on working after a refusal.
  auto back = dec.decode(env);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, rows_like(3000));
}

}  // namespace
}  // namespace chokepoint::store
