#include "core/common/guarded.h"

#include <new>
#include <opencv2/core.hpp>
#include <stdexcept>
#include <string>

#include "absl/strings/str_cat.h"

namespace veriface {
namespace {

// LibTorch's errors (c10::Error) append a C++ backtrace of several kilobytes to what(), starting with
// this line; a message meant for a caller stops before it. Matching the text rather than catching
// c10::Error keeps this library, and everything that needs only it, free of LibTorch.
std::string WithoutBacktrace(const char* what) {
  const std::string text = what;
  const size_t at = text.find("\nException raised from ");
  return at == std::string::npos ? text : text.substr(0, at);
}

}  // namespace

absl::Status StatusFromException(const std::string& what, const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat(what, ": OpenCV: ", e.msg));
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", WithoutBacktrace(e.what())));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": an unknown exception"));
  }
}

}  // namespace veriface
