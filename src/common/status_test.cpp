#include "common/status.hpp"

#include <gtest/gtest.h>

namespace ratchet {
namespace {

Result<int> half(int n) {
  if (n % 2 != 0) return invalid_argument("odd");
  return n / 2;
}

Result<int> quarter(int n) {
  ASSIGN_OR_RETURN(int h, half(n));
  return half(h);
}

TEST(Result, PropagatesTheFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd");
}

TEST(Status, ExitCodesFollowTheJobsSpec) {
  EXPECT_EQ(exit_code_for(Code::kOk), 0);
  EXPECT_EQ(exit_code_for(Code::kInternal), 1);
  EXPECT_EQ(exit_code_for(Code::kInvalidArgument), 2);
  EXPECT_EQ(exit_code_for(Code::kNotFound), 3);
  EXPECT_EQ(exit_code_for(Code::kFailedPrecondition), 4);
  EXPECT_EQ(exit_code_for(Code::kBusy), 5);
}

TEST(Status, HttpStatusesFollowConnect) {
  EXPECT_EQ(http_status_for(Code::kInvalidArgument), 400);
  EXPECT_EQ(http_status_for(Code::kUnauthenticated), 401);
  EXPECT_EQ(http_status_for(Code::kPermissionDenied), 403);
  EXPECT_EQ(http_status_for(Code::kNotFound), 404);
  EXPECT_EQ(http_status_for(Code::kInternal), 500);
  EXPECT_EQ(code_name(Code::kNotFound), "not_found");
}

TEST(Status, DataLossIsAnInternalFailureWithANameOfItsOwn) {
  EXPECT_EQ(code_name(Code::kDataLoss), "data_loss");
  EXPECT_EQ(exit_code_for(Code::kDataLoss), 1);
  EXPECT_EQ(http_status_for(Code::kDataLoss), 500);
  EXPECT_EQ(code_name(static_cast<Code>(99)), "internal");
}

}  // namespace
}  // namespace ratchet
