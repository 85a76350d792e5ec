#pragma once
// Whole-file reads and crash-safe writes, with errors that name the file.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace veriface {

absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes to a temporary file beside `path`, fsyncs it and renames it over `path`, so that a reader
// sees either the old or the new content, never a torn file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

}  // namespace veriface
