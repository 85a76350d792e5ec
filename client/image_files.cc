#include "client/image_files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace veriface::client {
namespace {

namespace fs = std::filesystem;

// Sorted image files directly in `dir`, and its sorted subfolders.
absl::Status ListFolder(const fs::path& dir, std::vector<fs::path>* images, std::vector<fs::path>* folders) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) {
      folders->push_back(it->path());
    } else if (IsImageFile(it->path().string())) {
      images->push_back(it->path());
    }
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list '", dir.string(), "': ", ec.message()));
  std::sort(images->begin(), images->end());
  std::sort(folders->begin(), folders->end());
  return absl::OkStatus();
}

}  // namespace

bool IsImageFile(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* const kExtensions[] = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pnm", ".webp"};
  return std::any_of(std::begin(kExtensions), std::end(kExtensions), [&](const char* e) { return ext == e; });
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read '", path, "'"));
  return bytes.str();
}

absl::StatusOr<std::vector<EnrollItem>> PlanEnrollment(const std::vector<std::string>& paths,
                                                       const std::string& identity_id, int max_per_identity) {
  std::vector<EnrollItem> items;
  std::map<std::string, int> per_identity;
  const auto add = [&](const std::string& id, const fs::path& file) {
    int& n = per_identity[id];
    if (max_per_identity > 0 && n >= max_per_identity) return;
    ++n;
    items.push_back(EnrollItem{id, file.string()});
  };
  for (const std::string& arg : paths) {
    const fs::path path(arg);
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      const std::string folder = fs::absolute(path).parent_path().filename().string();
      add(identity_id.empty() ? folder : identity_id, path);
      continue;
    }
    if (!fs::is_directory(path, ec)) return absl::NotFoundError(absl::StrCat("'", arg, "' is not a file or folder"));
    std::vector<fs::path> images, folders;
    if (absl::Status s = ListFolder(path, &images, &folders); !s.ok()) return s;
    fs::path normal = fs::absolute(path).lexically_normal();
    if (normal.filename().empty()) normal = normal.parent_path();  // "dir/" names dir
    const std::string own_name = normal.filename().string();
    for (const fs::path& image : images) add(identity_id.empty() ? own_name : identity_id, image);
    for (const fs::path& folder : folders) {
      std::vector<fs::path> person_images, ignored;
      if (absl::Status s = ListFolder(folder, &person_images, &ignored); !s.ok()) return s;
      for (const fs::path& image : person_images) {
        add(identity_id.empty() ? folder.filename().string() : identity_id, image);
      }
    }
  }
  if (items.empty()) return absl::NotFoundError("no image files (.jpg, .png, ...) found to enrol");
  return items;
}

absl::StatusOr<std::vector<std::string>> CollectImages(const std::vector<std::string>& paths, size_t limit) {
  std::vector<std::string> out;
  for (const std::string& arg : paths) {
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) {
      out.push_back(arg);
      continue;
    }
    if (!fs::is_directory(arg, ec)) return absl::NotFoundError(absl::StrCat("'", arg, "' is not a file or folder"));
    std::vector<std::string> found;
    for (fs::recursive_directory_iterator it(arg, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && IsImageFile(it->path().string())) found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  if (limit > 0 && out.size() > limit) out.resize(limit);
  if (out.empty()) return absl::NotFoundError("no image files (.jpg, .png, ...) found");
  return out;
}

}  // namespace veriface::client
