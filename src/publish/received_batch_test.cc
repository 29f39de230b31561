#include "publish/received_batch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ferry/v1/publisher.pb.h"

namespace ferry::publish {
namespace {

// A request as gRPC may hand it over: in several slices.
grpc::ByteBuffer InSlices(const std::string& bytes, size_t slice_size) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += slice_size) {
    slices.emplace_back(bytes.substr(at, slice_size));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(ReceivedBatch, DecodesARequestInSlicesAndAnswersInTheCompactForm) {
  v1::PublishRequest request;
  request.set_request_id(3);
  request.set_topic("orders");
  request.set_compact_results(true);
  for (int i = 0; i < 3; ++i) {
    v1::OutgoingMessage* m = request.add_messages();
    m->set_key("k" + std::to_string(i));
    m->set_value(std::string(50, static_cast<char>('a' + i)));
  }
  ReceivedBatch batch;
  {
    // The slices' references are the batch's: the caller's buffer may go.
    grpc::ByteBuffer buffer = InSlices(request.SerializeAsString(), 16);
    ASSERT_TRUE(batch.Decode(buffer).ok());
  }
  ASSERT_EQ(batch.request().messages.size(), 3u);
  EXPECT_EQ(batch.request().topic, "orders");
  EXPECT_EQ(batch.request().messages[2].value, std::string(50, 'c'));

  batch.answer()->cluster = "main";
  batch.answer()->results.resize(3);
  for (int i = 0; i < 3; ++i) batch.answer()->results[i].offset = 10 + i;
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(batch.Response().Dump(&slices).ok());
  ASSERT_EQ(slices.size(), 1u);
  v1::PublishResponse response;
  ASSERT_TRUE(
      response.ParseFromArray(slices[0].begin(), static_cast<int>(slices[0].size())));
  EXPECT_EQ(response.request_id(), 3u);
  EXPECT_EQ(response.compact().cluster(), "main");
  EXPECT_EQ(response.compact().offsets(2), 12);
}

TEST(ReceivedBatch, BytesThatAreNotAPublishRequestAreInvalidArgument) {
  ReceivedBatch batch;
  absl::Status s = batch.Decode(InSlices("\x12\x05or", 2));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

}  // namespace
}  // namespace ferry::publish
