// Pairs files in LFW format and finding images in an LFW-layout folder.

#include "core/eval/pairs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/test_env.h"

namespace veriface {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kView2[] =
    "2\t2\n"
    "Ann\t1\t2\n"
    "Bob\t1\t3\n"
    "Ann\t1\tBob\t2\n"
    "Cy\t4\tDee\t1\n"
    "Cy\t1\t2\n"
    "Dee\t1\t2\n"
    "Ann\t2\tCy\t1\n"
    "Bob\t1\tDee\t2\n";

TEST(ParsePairs, View2FoldsOfSameThenDifferentPairs) {
  const auto p = ParsePairs(kView2, "pairs.txt");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->num_folds, 2);
  EXPECT_EQ(p->pairs_per_class, 2);
  ASSERT_EQ(p->pairs.size(), 8u);
  EXPECT_THAT(p->Folds(), ElementsAre(0, 0, 0, 0, 1, 1, 1, 1));
  std::vector<bool> same;
  for (const ImagePair& q : p->pairs) same.push_back(q.same);
  EXPECT_THAT(same, ElementsAre(true, true, false, false, true, true, false, false));
  const ImagePair& d = p->pairs[3];
  EXPECT_EQ(d.a.name, "Cy");
  EXPECT_EQ(d.a.index, 4);
  EXPECT_EQ(d.b.name, "Dee");
  EXPECT_EQ(d.b.index, 1);
  EXPECT_EQ(d.line, 5);
  EXPECT_EQ(p->pairs[0].b.Key(), "Ann/Ann_0002");
  // Ann 1, 2; Bob 1, 2, 3; Cy 1, 2, 4; Dee 1, 2: sorted, each once.
  std::vector<std::string> keys;
  for (const LfwImageId& id : p->Images()) keys.push_back(id.Key());
  EXPECT_THAT(keys, ElementsAre("Ann/Ann_0001", "Ann/Ann_0002", "Bob/Bob_0001", "Bob/Bob_0002", "Bob/Bob_0003",
                                "Cy/Cy_0001", "Cy/Cy_0002", "Cy/Cy_0004", "Dee/Dee_0001", "Dee/Dee_0002"));
}

TEST(ParsePairs, View1HeaderIsOneFold) {
  const auto p = ParsePairs("1\nAnn 1 2\nAnn 1 Bob 1\n", "pairsDevTest.txt");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->num_folds, 1);
  EXPECT_EQ(p->pairs_per_class, 1);
  EXPECT_THAT(p->Folds(), ElementsAre(0, 0));
}

TEST(ParsePairs, AcceptsCrlfAndTrailingBlankLines) {
  const auto p = ParsePairs("1\r\nAnn\t1\t2\r\nAnn\t1\tBob\t1\r\n\r\n\n", "x");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pairs[1].b.name, "Bob");
}

TEST(ParsePairs, ErrorsNameTheFileAndLine) {
  auto message = [](const std::string& text) { return std::string(ParsePairs(text, "my.txt").status().message()); };
  EXPECT_THAT(message(""), HasSubstr("my.txt: empty pairs file"));
  EXPECT_THAT(message("1 2 3\n"), HasSubstr("my.txt:1: the header must be"));
  EXPECT_THAT(message("ten\n"), HasSubstr("my.txt:1: the pairs per class must be a positive integer, got 'ten'"));
  EXPECT_THAT(message("0\n"), HasSubstr("positive integer, got '0'"));
  EXPECT_THAT(message("1\nAnn 1\nAnn 1 Bob 1\n"), HasSubstr("my.txt:2: expected 'name i j'"));
  EXPECT_THAT(message("1\nAnn 1 x\nAnn 1 Bob 1\n"), HasSubstr("my.txt:2: an image number must be a positive"));
  EXPECT_THAT(message("1\nAnn 1 -2\nAnn 1 Bob 1\n"), HasSubstr("got '-2'"));
  EXPECT_THAT(message("1\nAnn 1 Bob 2\nAnn 1 2\n"), HasSubstr("my.txt:2: pair 1 of fold 1 should be a same-person"));
  EXPECT_THAT(message("1\nAnn 1 2\nAnn 1 3\n"), HasSubstr("my.txt:3: pair 2 of fold 1 should be a different"));
  EXPECT_THAT(message("1\nAnn 1 2\n"), HasSubstr("promises 1 fold(s) x 2 x 1 = 2 pairs, the file has 1"));
  EXPECT_THAT(message("1\nAnn 1 2\nAnn 1 Bob 1\nAnn 2 3\n"), HasSubstr("my.txt:4: more pairs than"));
  EXPECT_THAT(message("1\n../etc 1 2\nAnn 1 Bob 1\n"), HasSubstr("'../etc' is not a person's folder name"));
}

TEST(ReadPairsFile, MissingFileIsNotFound) {
  const auto p = ReadPairsFile("/nonexistent/pairs.txt");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(p.status().message(), HasSubstr("/nonexistent/pairs.txt"));
}

TEST(ReadPairsFile, ReadsTheRealLfwProtocolFiles) {
  const auto view2 = ReadPairsFile(testing::LfwDir() + "/pairs.txt");
  ASSERT_TRUE(view2.ok()) << view2.status();
  EXPECT_EQ(view2->num_folds, 10);
  EXPECT_EQ(view2->pairs.size(), 6000u);
  EXPECT_EQ(view2->Images().size(), 7701u);  // as the reference's results say
  const auto train = ReadPairsFile(testing::LfwDir() + "/pairsDevTrain.txt");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->num_folds, 1);
  EXPECT_EQ(train->pairs.size(), 2200u);
}

void Touch(const std::string& path) { std::ofstream(path) << "x"; }

TEST(LfwImageResolver, FindsImagesWhateverTheirExtension) {
  testing::TempDir dir;
  for (const char* person : {"Ann", "Bob", "Cy"}) std::filesystem::create_directory(dir.File(person));
  Touch(dir.File("Ann/Ann_0001.png"));
  Touch(dir.File("Ann/Ann_0002.pgm"));
  Touch(dir.File("Bob/Bob_0001.JPEG"));
  Touch(dir.File("Cy/Cy_0001.jpg"));
  Touch(dir.File("Cy/Cy_0001.png"));
  LfwImageResolver r(dir.path());
  EXPECT_EQ(*r.Resolve({"Ann", 1}), dir.File("Ann/Ann_0001.png"));
  EXPECT_EQ(*r.Resolve({"Ann", 2}), dir.File("Ann/Ann_0002.pgm"));
  EXPECT_EQ(*r.Resolve({"Bob", 1}), dir.File("Bob/Bob_0001.JPEG"));
  const auto missing = r.Resolve({"Ann", 3});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("Ann_0003.*"));
  const auto nobody = r.Resolve({"Dee", 1});
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(nobody.status().message(), HasSubstr("no folder for person 'Dee'"));
  const auto twice = r.Resolve({"Cy", 1});
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(), HasSubstr("Cy_0001.jpg, Cy_0001.png"));
}

}  // namespace
}  // namespace veriface
