#pragma once
// LFW pairs files and the LFW folder layout.
//
// A pairs file starts with a header line, then lists pairs one a line, tab- or space-separated:
//   name  i  j           two images of one person (a "same" pair)
//   name1 i  name2 j     images of two people (a "different" pair)
// View 2 (`pairs.txt`) has the header `10<TAB>300`: 10 folds, each 300 same pairs followed by 300
// different pairs. View 1 (`pairsDevTrain.txt`, `pairsDevTest.txt`) has a single number, the pairs per
// class: one fold of that many same pairs followed by as many different pairs.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

// One image of a person: `name`/`name`_NNNN.<ext> under the data folder, NNNN the 1-based index.
struct LfwImageId {
  std::string name;
  int index = 0;

  // "Person_Name/Person_Name_0003" (no extension): how the image is named in messages and results.
  std::string Key() const;
  bool operator<(const LfwImageId& o) const { return name < o.name || (name == o.name && index < o.index); }
  bool operator==(const LfwImageId& o) const { return name == o.name && index == o.index; }
};

struct ImagePair {
  LfwImageId a;
  LfwImageId b;
  bool same = false;
  int fold = 0;  // 0-based
  int line = 0;  // 1-based line in the pairs file, for messages
};

struct PairsFile {
  int num_folds = 1;
  int pairs_per_class = 0;       // per fold
  std::vector<ImagePair> pairs;  // in file order: fold by fold, same pairs before different ones

  // Every image the pairs use, sorted and without repeats.
  std::vector<LfwImageId> Images() const;
  // Per pair, 0 .. num_folds-1.
  std::vector<int> Folds() const;
};

// Parses the text of a pairs file. `source` names it in error messages (e.g. its path). Malformed
// headers or lines, a same/different line where the fold layout expects the other kind, and a pair
// count that does not match the header are INVALID_ARGUMENT errors naming the line.
absl::StatusOr<PairsFile> ParsePairs(std::string_view text, const std::string& source);
absl::StatusOr<PairsFile> ReadPairsFile(const std::string& path);

// Finds image files in a folder in LFW layout (`root`/Person/Person_NNNN.<ext>) whatever their
// extension. Each person's folder is listed once and remembered.
class LfwImageResolver {
 public:
  explicit LfwImageResolver(std::string root) : root_(std::move(root)) {}

  // The path of the image; NOT_FOUND when the person's folder or the file is missing, and
  // INVALID_ARGUMENT when several files differ only by extension (which one is meant is unclear).
  absl::StatusOr<std::string> Resolve(const LfwImageId& id);

  const std::string& root() const { return root_; }

 private:
  std::string root_;
  // Person -> (file stem -> file names with that stem).
  std::map<std::string, std::map<std::string, std::vector<std::string>>> listings_;
};

}  // namespace veriface
