// Training data pieces: the LFW people files, the people-disjoint training set, fold lists, the
// P x K sampler and augmentation.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/testing/test_env.h"
#include "trainer/training/augment.h"
#include "trainer/training/face_dataset.h"
#include "trainer/training/pk_sampler.h"

namespace veriface {
namespace {

TEST(PeopleFileTest, ParsesFoldedAndFlatFiles) {
  const auto folded = ParsePeopleFile("2\n2\nAnn\t3\nBob 1\n1\nCid\t2\n", "folded");
  ASSERT_TRUE(folded.ok()) << folded.status();
  ASSERT_EQ(folded->folds.size(), 2u);
  EXPECT_EQ(folded->folds[0], (std::vector<std::string>{"Ann", "Bob"}));
  EXPECT_EQ(*folded->People({1}), (std::set<std::string>{"Cid"}));
  EXPECT_EQ(folded->People({}).value().size(), 3u);
  EXPECT_FALSE(folded->People({2}).ok());

  const auto flat = ParsePeopleFile("3\nAnn\t3\nBob\t1\nCid\t2\n", "flat");
  ASSERT_TRUE(flat.ok()) << flat.status();
  ASSERT_EQ(flat->folds.size(), 1u);
  EXPECT_EQ(flat->folds[0].size(), 3u);
}

TEST(PeopleFileTest, MalformedFilesNameTheLine) {
  const auto short_file = ParsePeopleFile("3\nAnn\t3\nBob\t1\n", "short.txt");
  ASSERT_FALSE(short_file.ok());
  EXPECT_NE(std::string(short_file.status().message()).find("short.txt: line 4"), std::string::npos)
      << short_file.status();
  EXPECT_FALSE(ParsePeopleFile("", "empty").ok());
  EXPECT_FALSE(ParsePeopleFile("x\n", "bad header").ok());
  EXPECT_FALSE(ParsePeopleFile("1\nAnn three\n", "bad count").ok());
  EXPECT_FALSE(ParsePeopleFile("1\nAnn\t3\nBob\t2\n", "extra line").ok());
}

TEST(PeopleFileTest, RealLfwFilesHaveTheDocumentedCounts) {
  const auto v2 = ReadPeopleFile(testing::LfwDir() + "/people.txt");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->folds.size(), 10u);
  EXPECT_EQ(v2->People({}).value().size(), 5749u);
  const auto dev = ReadPeopleFile(testing::LfwDir() + "/peopleDevTrain.txt");
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(dev->folds.at(0).size(), 4038u);
}

TEST(TrainingSetTest, HeldOutPeopleNeverTrain) {
  const std::vector<PersonImages> folder = {
      {"Ann", {"a/1.jpg", "a/2.jpg"}}, {"Bob", {"b/1.jpg"}}, {"Cid", {"c/1.jpg", "c/2.jpg", "c/3.jpg"}}};
  const auto set = BuildTrainingSet(folder, std::nullopt, {"Bob"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->people, (std::vector<std::string>{"Ann", "Cid"}));
  EXPECT_EQ(set->paths.size(), 5u);
  EXPECT_EQ(set->held_out_people, 1);
  EXPECT_EQ(set->labels, (std::vector<int>{0, 0, 1, 1, 1}));

  // Allowed list: Cid and a person absent from the folder; Cid is held out too -> nobody left.
  const auto empty = BuildTrainingSet(folder, std::set<std::string>{"Cid", "Dan"}, {"Cid"});
  ASSERT_FALSE(empty.ok());
  const auto some = BuildTrainingSet(folder, std::set<std::string>{"Ann", "Dan"}, {});
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->missing_people, 1);
  EXPECT_EQ(some->people, (std::vector<std::string>{"Ann"}));
}

TEST(TrainingSetTest, LfwViewTwoFoldsAreDisjointFromTheirTestPairs) {
  // Training on folds 2..10 of people.txt with fold 1 of pairs.txt held out drops nobody: the folds
  // are people-disjoint, which is what makes the per-fold protocol leak-free.
  const auto people = ReadPeopleFile(testing::LfwDir() + "/people.txt");
  const auto pairs = ReadPairsFile(testing::LfwDir() + "/pairs.txt");
  ASSERT_TRUE(people.ok() && pairs.ok());
  const auto train = *people->People({1, 2, 3, 4, 5, 6, 7, 8, 9});
  for (const auto& name : PeopleInPairs(*pairs, {0})) EXPECT_EQ(train.count(name), 0u) << name;
  EXPECT_FALSE(PeopleInPairs(*pairs, {0}).empty());
}

TEST(FoldListTest, ParsesRangesOneBased) {
  EXPECT_EQ(*ParseFoldList("1,3,5-7", 10), (std::vector<int>{0, 2, 4, 5, 6}));
  EXPECT_EQ(*ParseFoldList("", 10), std::vector<int>{});
  EXPECT_FALSE(ParseFoldList("0", 10).ok());
  EXPECT_FALSE(ParseFoldList("11", 10).ok());
  EXPECT_FALSE(ParseFoldList("3-1", 10).ok());
  EXPECT_FALSE(ParseFoldList("one", 10).ok());
}

TEST(PkSamplerTest, BatchesHoldPPeopleOfKImagesPlusSingles) {
  // People 0..5 with 5 images each, people 6..8 with one image each.
  std::vector<int> labels;
  for (int p = 0; p < 6; ++p) labels.insert(labels.end(), 5, p);
  for (int p = 6; p < 9; ++p) labels.push_back(p);
  PkSamplerOptions o;
  o.people_per_batch = 4;
  o.images_per_person = 3;
  o.extra_negatives = 2;
  o.seed = 5;
  const auto sampler = PkSampler::Create(labels, o);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  EXPECT_EQ(sampler->anchor_people(), 6);
  EXPECT_EQ(sampler->single_items(), 3);
  EXPECT_EQ(sampler->batches_per_epoch(), 2);  // ceil(6 / 4)
  const auto epoch = sampler->Epoch(0);
  ASSERT_EQ(epoch.size(), 2u);
  std::set<int> people_seen;
  for (const auto& batch : epoch) {
    ASSERT_EQ(batch.size(), 4u * 3 + 2);
    std::map<int, int> per_person;
    std::set<int64_t> items(batch.begin(), batch.end());
    EXPECT_EQ(items.size(), batch.size()) << "no image twice in a batch";
    for (int64_t i : batch) ++per_person[labels[static_cast<size_t>(i)]];
    int multi = 0, single = 0;
    for (const auto& [person, n] : per_person) {
      if (person < 6) {
        EXPECT_EQ(n, 3);
        ++multi;
        people_seen.insert(person);
      } else {
        EXPECT_EQ(n, 1);
        ++single;
      }
    }
    EXPECT_EQ(multi, 4);
    EXPECT_EQ(single, 2);
  }
  EXPECT_EQ(people_seen.size(), 6u) << "one epoch visits every person with two or more images";
  // Deterministic per (seed, epoch); another epoch differs.
  EXPECT_EQ(sampler->Epoch(0), epoch);
  EXPECT_NE(sampler->Epoch(1), epoch);
}

TEST(PkSamplerTest, ShortPeopleRepeatImagesSoBatchesKeepOneShape) {
  // Two people with 2 images, one with 4; K = 3.
  const std::vector<int> labels = {0, 0, 1, 1, 2, 2, 2, 2};
  PkSamplerOptions o;
  o.people_per_batch = 3;
  o.images_per_person = 3;
  const auto repeat = PkSampler::Create(labels, o);
  ASSERT_TRUE(repeat.ok());
  const auto batch = repeat->Epoch(0).at(0);
  ASSERT_EQ(batch.size(), 9u);
  std::map<int, std::set<int64_t>> distinct;
  for (int64_t i : batch) distinct[labels[static_cast<size_t>(i)]].insert(i);
  EXPECT_EQ(distinct[0].size(), 2u);  // both images, one of them twice
  EXPECT_EQ(distinct[1].size(), 2u);
  EXPECT_EQ(distinct[2].size(), 3u);  // three of its four, no repeat

  o.repeat_to_k = false;
  const auto no_repeat = PkSampler::Create(labels, o);
  ASSERT_TRUE(no_repeat.ok());
  EXPECT_EQ(no_repeat->Epoch(0).at(0).size(), 7u);
}

TEST(PkSamplerTest, ImpossibleSetupsAreErrors) {
  PkSamplerOptions o;
  EXPECT_FALSE(PkSampler::Create({0, 1, 2}, o).ok());  // nobody has two images
  EXPECT_FALSE(PkSampler::Create({0, 0, 1}, o).ok());  // one anchor person, no extra negatives
  o.extra_negatives = 1;
  EXPECT_TRUE(PkSampler::Create({0, 0, 1}, o).ok());  // ... the single serves as negative
  o.images_per_person = 1;
  EXPECT_FALSE(PkSampler::Create({0, 0, 1, 1}, o).ok());
}

TEST(AugmentTest, SameGeneratorSameChipAndChangesStaySmall) {
  cv::Mat chip(64, 64, CV_8UC3);
  cv::randu(chip, cv::Scalar::all(0), cv::Scalar::all(255));
  AugmentOptions o;
  std::mt19937_64 a(11), b(11), c(12);
  const cv::Mat x = AugmentChip(chip, o, a);
  const cv::Mat y = AugmentChip(chip, o, b);
  const cv::Mat z = AugmentChip(chip, o, c);
  EXPECT_EQ(x.size(), chip.size());
  EXPECT_EQ(x.type(), CV_8UC3);
  EXPECT_EQ(cv::norm(x, y, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(x, z, cv::NORM_L1), 0.0);

  // Disabled: an unchanged copy, whatever the generator.
  o.enabled = false;
  EXPECT_EQ(cv::norm(AugmentChip(chip, o, c), chip, cv::NORM_INF), 0.0);

  // Only a flip: the output is the mirror image.
  AugmentOptions flip_only;
  flip_only.flip_probability = 1.0;
  flip_only.max_shift = flip_only.max_scale = flip_only.max_rotation_deg = 0;
  flip_only.brightness = flip_only.contrast = flip_only.saturation = 0;
  cv::Mat mirrored;
  cv::flip(chip, mirrored, 1);
  EXPECT_LE(cv::norm(AugmentChip(chip, flip_only, a), mirrored, cv::NORM_INF), 1.0);
}

}  // namespace
}  // namespace veriface
