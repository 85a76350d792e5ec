#include "core/eval/pairs.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Fields(std::string_view line) {
  std::vector<std::string> out;
  for (const absl::string_view f :
       absl::StrSplit(absl::string_view(line.data(), line.size()), absl::ByAnyChar(" \t\r"), absl::SkipEmpty())) {
    out.emplace_back(f);
  }
  return out;
}

absl::Status LineError(const std::string& source, int line, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", std::string(what)));
}

absl::StatusOr<int> PositiveInt(const std::string& field, const std::string& source, int line, const char* what) {
  int v = 0;
  if (!absl::SimpleAtoi(field, &v) || v <= 0 || field.find_first_not_of("0123456789") != std::string::npos) {
    return LineError(source, line, absl::StrCat(what, " must be a positive integer, got '", field, "'"));
  }
  return v;
}

absl::Status CheckName(const std::string& name, const std::string& source, int line) {
  if (name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos) {
    return LineError(source, line, absl::StrCat("'", name, "' is not a person's folder name"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LfwImageId::Key() const { return absl::StrFormat("%s/%s_%04d", name, name, index); }

std::vector<LfwImageId> PairsFile::Images() const {
  std::set<LfwImageId> unique;
  for (const ImagePair& p : pairs) {
    unique.insert(p.a);
    unique.insert(p.b);
  }
  return {unique.begin(), unique.end()};
}

std::vector<int> PairsFile::Folds() const {
  std::vector<int> folds;
  folds.reserve(pairs.size());
  for (const ImagePair& p : pairs) folds.push_back(p.fold);
  return folds;
}

absl::StatusOr<PairsFile> ParsePairs(std::string_view text, const std::string& source) {
  PairsFile out;
  bool have_header = false;
  int line_no = 0;
  for (const absl::string_view raw : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    const std::vector<std::string> f = Fields(std::string_view(raw.data(), raw.size()));
    if (f.empty()) continue;  // blank lines (a trailing newline, a CRLF file's last line) carry nothing
    if (!have_header) {
      if (f.size() == 1) {
        VF_ASSIGN_OR_RETURN(out.pairs_per_class, PositiveInt(f[0], source, line_no, "the pairs per class"));
      } else if (f.size() == 2) {
        VF_ASSIGN_OR_RETURN(out.num_folds, PositiveInt(f[0], source, line_no, "the number of folds"));
        VF_ASSIGN_OR_RETURN(out.pairs_per_class, PositiveInt(f[1], source, line_no, "the pairs per class"));
      } else {
        return LineError(source, line_no,
                         absl::StrCat("the header must be 'pairs_per_class' (View 1) or 'folds<TAB>pairs_per_class' "
                                      "(View 2), got ",
                                      f.size(), " fields"));
      }
      have_header = true;
      continue;
    }
    const int64_t expected_total = int64_t{2} * out.num_folds * out.pairs_per_class;
    const int64_t position = static_cast<int64_t>(out.pairs.size());
    if (position >= expected_total) {
      return LineError(source, line_no,
                       absl::StrCat("more pairs than the header's ", out.num_folds, " fold(s) x 2 x ",
                                    out.pairs_per_class, " = ", expected_total));
    }
    ImagePair p;
    p.line = line_no;
    p.fold = static_cast<int>(position / (2 * out.pairs_per_class));
    const bool expect_same = position % (2 * out.pairs_per_class) < out.pairs_per_class;
    if (f.size() == 3) {
      p.same = true;
      VF_RETURN_IF_ERROR(CheckName(f[0], source, line_no));
      p.a.name = p.b.name = f[0];
      VF_ASSIGN_OR_RETURN(p.a.index, PositiveInt(f[1], source, line_no, "an image number"));
      VF_ASSIGN_OR_RETURN(p.b.index, PositiveInt(f[2], source, line_no, "an image number"));
    } else if (f.size() == 4) {
      p.same = false;
      VF_RETURN_IF_ERROR(CheckName(f[0], source, line_no));
      VF_RETURN_IF_ERROR(CheckName(f[2], source, line_no));
      p.a.name = f[0];
      p.b.name = f[2];
      VF_ASSIGN_OR_RETURN(p.a.index, PositiveInt(f[1], source, line_no, "an image number"));
      VF_ASSIGN_OR_RETURN(p.b.index, PositiveInt(f[3], source, line_no, "an image number"));
    } else {
      return LineError(source, line_no,
                       absl::StrCat("expected 'name i j' (same person) or 'name1 i name2 j' (different people), got ",
                                    f.size(), " fields: '", absl::StrJoin(f, " "), "'"));
    }
    if (p.same != expect_same) {
      return LineError(source, line_no,
                       absl::StrCat("pair ", position + 1, " of fold ", p.fold + 1, " should be a ",
                                    expect_same ? "same-person ('name i j')" : "different-people ('name1 i name2 j')",
                                    " line: each fold lists its ", out.pairs_per_class,
                                    " same pairs first, then as many different pairs"));
    }
    out.pairs.push_back(std::move(p));
  }
  if (!have_header) return absl::InvalidArgumentError(absl::StrCat(source, ": empty pairs file"));
  const int64_t expected_total = int64_t{2} * out.num_folds * out.pairs_per_class;
  if (static_cast<int64_t>(out.pairs.size()) != expected_total) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the header promises ", out.num_folds, " fold(s) x 2 x ",
                                                   out.pairs_per_class, " = ", expected_total, " pairs, the file has ",
                                                   out.pairs.size()));
  }
  return out;
}

absl::StatusOr<PairsFile> ReadPairsFile(const std::string& path) {
  VF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParsePairs(text, path);
}

absl::StatusOr<std::string> LfwImageResolver::Resolve(const LfwImageId& id) {
  auto it = listings_.find(id.name);
  if (it == listings_.end()) {
    const fs::path dir = fs::path(root_) / id.name;
    std::error_code ec;
    fs::directory_iterator files(dir, ec);
    if (ec) {
      return absl::NotFoundError(
          absl::StrCat("no folder for person '", id.name, "' in '", root_, "' (", ec.message(), ")"));
    }
    std::map<std::string, std::vector<std::string>> by_stem;
    for (const fs::directory_entry& e : files) {
      if (!e.is_regular_file(ec)) continue;
      by_stem[e.path().stem().string()].push_back(e.path().filename().string());
    }
    for (auto& [stem, names] : by_stem) std::sort(names.begin(), names.end());
    it = listings_.emplace(id.name, std::move(by_stem)).first;
  }
  const std::string stem = absl::StrFormat("%s_%04d", id.name, id.index);
  const auto found = it->second.find(stem);
  if (found == it->second.end()) {
    return absl::NotFoundError(absl::StrCat("no image '", stem, ".*' in '", (fs::path(root_) / id.name).string(), "'"));
  }
  if (found->second.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("several files for image ", id.Key(), ": ", absl::StrJoin(found->second, ", "), "; keep one"));
  }
  return (fs::path(root_) / id.name / found->second.front()).string();
}

}  // namespace veriface
