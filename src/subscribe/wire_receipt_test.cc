#include "subscribe/wire_receipt.h"

#include <gtest/gtest.h>

namespace ferry::subscribe {
namespace {

WireReceipt Sample() {
  return {.stream = 7,
          .partition_epoch = 1234567,
          .generation = 3,
          .partition = 11,
          .attempt = 2,
          .offset = int64_t{1} << 40,
          .topic = "orders.v1",
          .cluster = "standby"};
}

TEST(WireReceipt, RoundTrips) {
  const WireReceipt in = Sample();
  const std::string bytes = EncodeReceipt(in);
  std::optional<WireReceipt> out = DecodeReceipt(bytes);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->stream, in.stream);
  EXPECT_EQ(out->partition_epoch, in.partition_epoch);
  EXPECT_EQ(out->generation, in.generation);
  EXPECT_EQ(out->partition, in.partition);
  EXPECT_EQ(out->attempt, in.attempt);
  EXPECT_EQ(out->offset, in.offset);
  EXPECT_EQ(out->topic, in.topic);
  EXPECT_EQ(out->cluster, in.cluster);
}

// Receipts outlive a node upgrade in clients' hands: the bytes are fixed.
TEST(WireReceipt, EncodesTheVersionTwoBytesWithTheLongestVarints) {
  const WireReceipt r{.stream = UINT64_MAX,
                      .partition_epoch = 300,
                      .generation = uint64_t{1} << 63,
                      .partition = INT32_MAX,
                      .attempt = INT32_MAX,
                      .offset = INT64_MAX,
                      .topic = "orders",
                      .cluster = "east"};
  const std::string expected =
      "\x02"
      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  // stream
      "\xac\x02"                                  // partition epoch
      "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"  // generation
      "\xfe\xff\xff\xff\x0f"                      // partition, zig-zag
      "\xfe\xff\xff\xff\x0f"                      // attempt
      "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"  // offset
      "\x06orders\x04"
      "east";
  EXPECT_EQ(EncodeReceipt(r), expected);
}

TEST(WireRun, AppendsAfterWhatIsThereWithTheLongestNamesAndCount) {
  WireRun run{.first = Sample(), .count = UINT32_MAX};
  const std::string topic(249, 't'), cluster(255, 'c');
  run.first.offset = 1000;
  run.first.topic = topic;
  run.first.cluster = cluster;
  std::string out = "prefix";
  AppendRun(run, out);
  const std::string expected = "prefix\x03\x07\x87\xad\x4b\x03\x16\x04\xd0\x0f\xf9\x01" +
                               topic + "\xff\x01" + cluster + "\xff\xff\xff\xff\x0f";
  EXPECT_EQ(out, expected);
  std::optional<WireRun> back = DecodeRun(std::string_view(out).substr(6));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->count, UINT32_MAX);
  EXPECT_EQ(back->first.topic, topic);
  EXPECT_EQ(back->first.cluster, cluster);
}

TEST(WireReceipt, ReceiptsOfTwoClustersDifferOnlyInTheirCluster) {
  WireReceipt other = Sample();
  other.cluster = "main";
  const std::string bytes_a = EncodeReceipt(Sample());
  const std::string bytes_b = EncodeReceipt(other);
  std::optional<WireReceipt> a = DecodeReceipt(bytes_a);
  std::optional<WireReceipt> b = DecodeReceipt(bytes_b);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->cluster, "standby");
  EXPECT_EQ(b->cluster, "main");
  EXPECT_EQ(a->topic, b->topic);
  EXPECT_EQ(a->offset, b->offset);
}

// Version 1 (before dual consume) as a node of that version wrote it.
std::string VersionOne(const WireReceipt& r) {
  std::string out(1, '\x01');
  for (uint64_t v :
       {r.stream, r.partition_epoch, r.generation,
        static_cast<uint64_t>(r.partition) << 1, static_cast<uint64_t>(r.attempt) << 1,
        static_cast<uint64_t>(r.offset) << 1, static_cast<uint64_t>(r.topic.size())}) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  return out + std::string(r.topic);
}

TEST(WireReceipt, VersionOneDecodesWithoutACluster) {
  const std::string bytes = VersionOne(Sample());
  std::optional<WireReceipt> out = DecodeReceipt(bytes);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->topic, "orders.v1");
  EXPECT_EQ(out->offset, Sample().offset);
  EXPECT_EQ(out->cluster, "");
  EXPECT_FALSE(DecodeReceipt(VersionOne(Sample()) + "\x01x").has_value())
      << "version 1 has nothing after the topic";
}

TEST(WireReceipt, RejectsAnUnknownVersion) {
  std::string bytes = EncodeReceipt(Sample());
  bytes[0] = 3;
  EXPECT_FALSE(DecodeReceipt(bytes).has_value());
}

TEST(WireReceipt, RejectsGarbageTruncationAndTrailingBytes) {
  const std::string good = EncodeReceipt(Sample());
  EXPECT_FALSE(DecodeReceipt("").has_value());
  EXPECT_FALSE(DecodeReceipt("hello world").has_value());
  EXPECT_FALSE(DecodeReceipt(std::string(40, '\xff')).has_value());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeReceipt(good.substr(0, n)).has_value()) << "length " << n;
  }
  EXPECT_FALSE(DecodeReceipt(good + "x").has_value());
}

TEST(WireReceipt, RejectsOutOfRangeFields) {
  WireReceipt bad = Sample();
  bad.offset = -5;
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
  bad = Sample();
  bad.attempt = 0;
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
  bad = Sample();
  bad.topic = {};
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
  bad = Sample();
  const std::string long_cluster(256, 'c');
  bad.cluster = long_cluster;
  EXPECT_FALSE(DecodeReceipt(EncodeReceipt(bad)).has_value());
}

TEST(WireRun, RoundTripsAndNamesEachMessagesReceipt) {
  std::string bytes;
  AppendRun({.first = Sample(), .count = 300}, bytes);
  std::optional<WireRun> run = DecodeRun(bytes);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->count, 300u);
  EXPECT_EQ(EncodeReceipt(run->first), EncodeReceipt(Sample()));
  WireReceipt last = Sample();
  last.offset += 299;
  EXPECT_EQ(EncodeReceipt(run->At(299)), EncodeReceipt(last));
}

TEST(WireRun, RunsAndReceiptsNeverDecodeAsEachOther) {
  std::string run;
  AppendRun({.first = Sample(), .count = 2}, run);
  EXPECT_FALSE(DecodeReceipt(run).has_value());
  EXPECT_FALSE(DecodeRun(EncodeReceipt(Sample())).has_value());
}

TEST(WireRun, RejectsAnEmptyRunAnOverflowingOneAndTruncation) {
  std::string empty;
  AppendRun({.first = Sample(), .count = 0}, empty);
  EXPECT_FALSE(DecodeRun(empty).has_value());

  WireReceipt at_end = Sample();
  at_end.offset = INT64_MAX - 1;
  std::string fits, overflows;
  AppendRun({.first = at_end, .count = 1}, fits);
  AppendRun({.first = at_end, .count = 2}, overflows);
  EXPECT_TRUE(DecodeRun(fits).has_value());
  EXPECT_FALSE(DecodeRun(overflows).has_value());

  std::string bytes;
  AppendRun({.first = Sample(), .count = 5}, bytes);
  for (size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(DecodeRun(bytes.substr(0, size)).has_value()) << size;
  }
  EXPECT_FALSE(DecodeRun(bytes + "x").has_value());
}

}  // namespace
}  // namespace ferry::subscribe
