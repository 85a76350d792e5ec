// Guarded: exceptions from LibTorch, OpenCV and the standard library become statuses with the right code,
// and a LibTorch error's message reaches the caller without its C++ backtrace.

#include "core/common/guarded.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <new>
#include <opencv2/core.hpp>
#include <stdexcept>

namespace veriface {
namespace {

TEST(GuardedTest, LibTorchErrorsLoseTheirBacktrace) {
  const absl::Status s = Guarded("loading", []() -> absl::Status {
    TORCH_CHECK(false, "shape mismatch");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message().rfind("loading: shape mismatch", 0), 0U) << s.message();
  EXPECT_EQ(s.message().find("Exception raised from"), absl::string_view::npos) << s.message();
  EXPECT_LT(s.message().size(), 200U) << s.message();
}

TEST(GuardedTest, EachKindOfExceptionHasItsCode) {
  EXPECT_EQ(Guarded("x", []() -> absl::Status { throw std::invalid_argument("bad"); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Guarded("x", []() -> absl::Status { throw std::bad_alloc(); }).code(),
            absl::StatusCode::kResourceExhausted);
  const absl::Status cv = Guarded("drawing", []() -> absl::Status {
    cv::Mat m(2, 2, CV_8UC1);
    (void)m.reshape(3);  // 4 elements cannot be split into 3 channels
    return absl::OkStatus();
  });
  EXPECT_EQ(cv.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(cv.message().rfind("drawing: OpenCV: ", 0), 0U) << cv.message();
  const absl::StatusOr<int> fine = Guarded("x", []() -> absl::StatusOr<int> { return 7; });
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(*fine, 7);
}

}  // namespace
}  // namespace veriface
