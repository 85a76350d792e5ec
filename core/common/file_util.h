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

// `path` as records (model.json, result files) keep it, so that they name no machine's folders: relative to
// the current directory when it lies under it, else relative to the current directory's parent when under
// that (the shared data beside the checkout: "../shared/data/lfw"), else as given. Lexical: no link is
// followed and nothing need exist.
std::string DisplayPath(const std::string& path);

}  // namespace veriface
