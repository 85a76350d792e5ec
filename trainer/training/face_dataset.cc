#include "trainer/training/face_dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;

bool IsImageFile(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pnm", ".bmp", ".webp"};
  return kExtensions.count(ext) > 0;
}

std::vector<std::string> Fields(const std::string& line) {
  return absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
}

}  // namespace

absl::StatusOr<std::vector<PersonImages>> ScanFaceFolder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return absl::NotFoundError(absl::StrCat("'", root, "' is not a folder"));
  std::vector<PersonImages> people;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory() || entry.path().filename().string().rfind('.', 0) == 0) continue;
    PersonImages person{entry.path().filename().string(), {}};
    for (const auto& file : fs::directory_iterator(entry.path(), ec)) {
      if (file.is_regular_file() && IsImageFile(file.path())) person.paths.push_back(file.path().string());
    }
    if (person.paths.empty()) continue;
    std::sort(person.paths.begin(), person.paths.end());
    people.push_back(std::move(person));
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list '", root, "': ", ec.message()));
  if (people.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", root, "' holds no images in LFW layout (Person/image.jpg)"));
  }
  std::sort(people.begin(), people.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return people;
}

absl::StatusOr<PeopleFile> ParsePeopleFile(const std::string& text, const std::string& source) {
  std::vector<std::string> lines;
  for (auto& line : absl::StrSplit(text, '\n')) {
    if (!Fields(std::string(line)).empty()) lines.emplace_back(line);
  }
  const auto bad = [&](size_t i, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": line ", i + 1, ": ", why));
  };
  int header = 0;
  if (lines.empty() || Fields(lines[0]).size() != 1 || !absl::SimpleAtoi(Fields(lines[0])[0], &header) || header <= 0) {
    return bad(0, "expected a positive count of folds or people");
  }
  // One fold listed directly, or `header` folds each introduced by its own count.
  const bool folded = lines.size() > 1 && Fields(lines[1]).size() == 1;
  PeopleFile out;
  size_t i = 1;
  const int num_folds = folded ? header : 1;
  for (int f = 0; f < num_folds; ++f) {
    int count = header;
    if (folded) {
      if (i >= lines.size() || Fields(lines[i]).size() != 1 || !absl::SimpleAtoi(Fields(lines[i])[0], &count) ||
          count < 0) {
        return bad(i, absl::StrCat("expected the people count of fold ", f + 1));
      }
      ++i;
    }
    std::vector<std::string> fold;
    for (int k = 0; k < count; ++k, ++i) {
      if (i >= lines.size()) return bad(i, absl::StrCat("file ends inside fold ", f + 1));
      const auto fields = Fields(lines[i]);
      int images = 0;
      if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &images)) {
        return bad(i, absl::StrCat("expected 'name<TAB>images', got '", lines[i], "'"));
      }
      fold.push_back(fields[0]);
    }
    out.folds.push_back(std::move(fold));
  }
  if (i != lines.size()) return bad(i, "more lines than the counts announce");
  return out;
}

absl::StatusOr<PeopleFile> ReadPeopleFile(const std::string& path) {
  VF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParsePeopleFile(text, path);
}

absl::StatusOr<std::set<std::string>> PeopleFile::People(const std::vector<int>& folds_wanted) const {
  std::set<std::string> out;
  for (size_t f = 0; f < folds.size(); ++f) {
    const bool wanted = folds_wanted.empty() ||
                        std::find(folds_wanted.begin(), folds_wanted.end(), static_cast<int>(f)) != folds_wanted.end();
    if (wanted) out.insert(folds[f].begin(), folds[f].end());
  }
  for (const int f : folds_wanted) {
    if (f < 0 || f >= static_cast<int>(folds.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("fold ", f + 1, " asked for, but the people file has ", folds.size(), " fold(s)"));
    }
  }
  return out;
}

std::set<std::string> PeopleInPairs(const PairsFile& pairs, const std::vector<int>& folds) {
  std::set<std::string> out;
  for (const auto& p : pairs.pairs) {
    if (!folds.empty() && std::find(folds.begin(), folds.end(), p.fold) == folds.end()) continue;
    out.insert(p.a.name);
    out.insert(p.b.name);
  }
  return out;
}

absl::StatusOr<TrainingSet> BuildTrainingSet(const std::vector<PersonImages>& folder,
                                             const std::optional<std::set<std::string>>& allowed,
                                             const std::set<std::string>& held_out) {
  TrainingSet set;
  std::set<std::string> present;
  for (const auto& person : folder) {
    present.insert(person.name);
    if (allowed && allowed->count(person.name) == 0) continue;
    if (held_out.count(person.name) > 0) {
      ++set.held_out_people;
      continue;
    }
    const int label = static_cast<int>(set.people.size());
    set.people.push_back(person.name);
    for (const auto& path : person.paths) {
      set.paths.push_back(path);
      set.labels.push_back(label);
    }
  }
  if (allowed) {
    for (const auto& name : *allowed) set.missing_people += present.count(name) == 0 ? 1 : 0;
  }
  if (set.paths.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no training images left: ", set.held_out_people,
                                                   " allowed people are held out, ", set.missing_people,
                                                   " have no folder"));
  }
  return set;
}

absl::StatusOr<std::vector<int>> ParseFoldList(const std::string& text, int num_folds) {
  std::vector<int> out;
  for (const auto& part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    const std::vector<std::string> range = absl::StrSplit(part, '-');
    int lo = 0, hi = 0;
    const bool ok = (range.size() == 1 && absl::SimpleAtoi(range[0], &lo) && (hi = lo, true)) ||
                    (range.size() == 2 && absl::SimpleAtoi(range[0], &lo) && absl::SimpleAtoi(range[1], &hi));
    if (!ok || lo < 1 || hi < lo || hi > num_folds) {
      return absl::InvalidArgumentError(
          absl::StrCat("fold list '", text, "': '", part, "' is not a fold or range within 1..", num_folds));
    }
    for (int f = lo; f <= hi; ++f) {
      if (std::find(out.begin(), out.end(), f - 1) == out.end()) out.push_back(f - 1);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace veriface
