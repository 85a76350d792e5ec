#include "core/common/guarded.h"

#include <c10/util/Exception.h>

#include <new>
#include <opencv2/core.hpp>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace veriface {

absl::Status StatusFromException(const std::string& what, const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const c10::Error& e) {
    // what() would append a C++ backtrace of several kilobytes to a message meant for a caller.
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat(what, ": OpenCV: ", e.msg));
  } catch (const std::invalid_argument& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": an unknown exception"));
  }
}

}  // namespace veriface
