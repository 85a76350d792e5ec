#pragma once
// A fresh empty directory for one test, removed with everything in it when the object dies. Header-only
// and free of LibTorch, so that fast tests need not compile the model headers test_env.h brings.

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace veriface::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "veriface-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace veriface::testing
