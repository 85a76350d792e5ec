#pragma once
// Training data from a folder in LFW layout (`root`/Person/*.jpg), the LFW people files, and the
// people-disjoint training set: whoever appears in a held-out pair never appears in training.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/pairs.h"

namespace veriface {

struct PersonImages {
  std::string name;
  std::vector<std::string> paths;  // sorted
};

// Every person folder under `root` with at least one image (JPEG, PNG, PGM/PPM, BMP or WebP by
// extension, any case), sorted by name. NOT_FOUND when `root` is not a folder; INVALID_ARGUMENT when it
// holds no images at all.
absl::StatusOr<std::vector<PersonImages>> ScanFaceFolder(const std::string& root);

// An LFW people file: View 2's `people.txt` (a fold count, then per fold a people count and
// `name<TAB>images` lines) or View 1's `peopleDevTrain.txt` / `peopleDevTest.txt` (a people count, then
// the lines), which reads as a single fold.
struct PeopleFile {
  std::vector<std::vector<std::string>> folds;

  // The people of the folds listed (0-based), or of every fold when `folds_wanted` is empty.
  absl::StatusOr<std::set<std::string>> People(const std::vector<int>& folds_wanted) const;
};
absl::StatusOr<PeopleFile> ParsePeopleFile(const std::string& text, const std::string& source);
absl::StatusOr<PeopleFile> ReadPeopleFile(const std::string& path);

// Everyone in the pairs (both sides of every pair), restricted to the folds listed unless empty.
std::set<std::string> PeopleInPairs(const PairsFile& pairs, const std::vector<int>& folds = {});

struct TrainingSet {
  std::vector<std::string> paths;
  std::vector<int> labels;          // index into `people`, per path
  std::vector<std::string> people;  // those with at least one image in the set
  int64_t held_out_people = 0;      // allowed people dropped because they are held out
  int64_t missing_people = 0;       // allowed people with no folder under the root
};

// The images of the people in `allowed` (everyone in the folder when it is nullopt), minus every
// person in `held_out`. INVALID_ARGUMENT when nobody is left.
absl::StatusOr<TrainingSet> BuildTrainingSet(const std::vector<PersonImages>& folder,
                                             const std::optional<std::set<std::string>>& allowed,
                                             const std::set<std::string>& held_out);

// "1,3,5-7" (1-based, as a person counts folds) -> {0, 2, 4, 5, 6}; empty text -> empty list.
absl::StatusOr<std::vector<int>> ParseFoldList(const std::string& text, int num_folds);

}  // namespace veriface
