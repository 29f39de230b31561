#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "ferry/v1/publisher.pb.h"
#include "publish/publish_wire.h"

namespace ferry::publish {

// A request for tests of the publish path, given as the generated message:
// serialized and decoded as ferryd decodes what it receives, with its answer
// read back through the generated parser, as a client reads it.
class TestBatch {
 public:
  explicit TestBatch(const v1::PublishRequest& request)
      : bytes_(request.SerializeAsString()) {
    const std::string_view piece = bytes_;
    EXPECT_TRUE(DecodePublishRequest({&piece, 1}, &request_).ok());
  }

  const PublishRequestView& request() const { return request_; }
  BatchResults* answer() { return &answer_; }

  v1::PublishResponse Response() const {
    const ResponsePlan plan = PlanPublishResponse(request_, answer_);
    std::string bytes(plan.size, '\0');
    EXPECT_EQ(WritePublishResponse(request_, answer_, plan, bytes.data()),
              bytes.data() + plan.size);
    v1::PublishResponse response;
    EXPECT_TRUE(response.ParseFromString(bytes));
    return response;
  }

 private:
  std::string bytes_;
  PublishRequestView request_;
  BatchResults answer_;
};

}  // namespace ferry::publish
