// IvfInt8Index: exact when every list is probed, close to it when a part is (on data with clusters, as
// faces have), removed labels never come back and the rest stay findable after their lists are
// compacted, bad labels and options are refused, and the same data builds the same index.

#include "core/gallery/ivf_int8_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "core/gallery/flat_index.h"
#include "tests/gallery/gallery_testing.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

// n unit vectors around `centres` random centres (spread 0.5 per coordinate around a unit centre), in
// slots 0..n-1, all owned by identity 0.
SlotRows ClusteredRows(std::mt19937& rng, int n, int centres) {
  const std::vector<std::vector<float>> c = RandomUnits(rng, centres);
  std::normal_distribution<float> noise(0, 0.5F / std::sqrt(static_cast<float>(kDim)));
  std::uniform_int_distribution<int> pick(0, centres - 1);
  SlotRows rows;
  rows.dim = kDim;
  for (int i = 0; i < n; ++i) {
    std::vector<float> v = c[static_cast<size_t>(pick(rng))];
    double norm = 0;
    for (float& x : v) {
      x += noise(rng);
      norm += x * x;
    }
    for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
    rows.values.insert(rows.values.end(), v.begin(), v.end());
    rows.owner.push_back(0);
  }
  return rows;
}

std::vector<int64_t> Slots(const SlotRows& rows) {
  std::vector<int64_t> slots(static_cast<size_t>(rows.slots()));
  std::iota(slots.begin(), slots.end(), 0);
  return slots;
}

std::vector<int64_t> Labels(const std::vector<IndexHit>& hits) {
  std::vector<int64_t> out;
  for (const IndexHit& h : hits) out.push_back(h.label);
  return out;
}

// The exact top k of the live rows, by FlatIndex (itself checked against brute force in index_test).
std::vector<int64_t> Exact(const SlotRows& rows, const std::vector<float>& q, int k) {
  FlatIndex flat(&rows);
  auto hits = flat.Search(q.data(), k);
  EXPECT_TRUE(hits.ok());
  return Labels(*hits);
}

std::unique_ptr<IvfInt8Index> Build(const SlotRows& rows, int64_t lists, int nprobe) {
  IvfInt8Options options;
  options.lists = lists;
  options.nprobe = nprobe;
  auto index = IvfInt8Index::Create(&rows, options, rows.values.data(), rows.slots());
  EXPECT_TRUE(index.ok()) << index.status();
  if (!index.ok()) return nullptr;
  const std::vector<int64_t> slots = Slots(rows);
  EXPECT_TRUE((*index)->Add(rows.values.data(), slots.data(), rows.slots()).ok());
  return *std::move(index);
}

TEST(IvfInt8IndexTest, ProbingEveryListIsExactAndProbingAFewIsClose) {
  std::mt19937 rng(21);
  const SlotRows rows = ClusteredRows(rng, 4000, 64);
  std::unique_ptr<IvfInt8Index> index = Build(rows, 32, /*nprobe=*/32);
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->size(), 4000);
  EXPECT_EQ(index->name(), "ivf32-int8");
  EXPECT_FALSE(index->exact());
  EXPECT_LT(index->imbalance(), 8) << "k-means spreads the clusters over the lists";
  // int8 codes, a scale and a label: about 140 B per vector against 512 for fp32.
  EXPECT_LT(index->memory_bytes(), 4000 * 200);

  int top1_with_few_lists = 0;
  for (int t = 0; t < 60; ++t) {
    const std::vector<float> q = RandomUnit(rng);
    const std::vector<int64_t> want = Exact(rows, q, 10);
    ASSERT_TRUE(index->set_nprobe(32).ok());
    auto all = index->Search(q.data(), 10);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(Labels(*all), want) << "every list probed and re-scored in fp32: the exact top 10";
    for (const IndexHit& h : *all) {
      float exact = 0;
      for (int64_t j = 0; j < kDim; ++j) exact += rows.row(h.label)[j] * q[static_cast<size_t>(j)];
      EXPECT_NEAR(h.score, exact, 1e-5) << "scores are the fp32 ones";
    }
    ASSERT_TRUE(index->set_nprobe(8).ok());
    auto few = index->Search(q.data(), 10);
    ASSERT_TRUE(few.ok());
    ASSERT_FALSE(few->empty());
    top1_with_few_lists += (*few)[0].label == want[0];
  }
  EXPECT_GE(top1_with_few_lists, 54) << "a quarter of the lists finds the nearest of clustered data nearly always";
}

TEST(IvfInt8IndexTest, RemovedLabelsNeverComeBackAndTheRestStayFindable) {
  std::mt19937 rng(22);
  SlotRows rows = ClusteredRows(rng, 2000, 16);
  std::unique_ptr<IvfInt8Index> index = Build(rows, 16, /*nprobe=*/16);
  ASSERT_NE(index, nullptr);
  // Remove every third slot (as Collection does: free the row, then tell the index); removing twice, or
  // a label never added, is a no-op.
  std::vector<int64_t> removed;
  for (int64_t s = 0; s < rows.slots(); s += 3) removed.push_back(s);
  for (int64_t s : removed) {
    rows.owner[static_cast<size_t>(s)] = -1;
    std::fill_n(rows.values.begin() + s * kDim, kDim, 0.0F);
  }
  ASSERT_TRUE(index->Remove(removed.data(), static_cast<int64_t>(removed.size())).ok());
  ASSERT_TRUE(index->Remove(removed.data(), 5).ok());
  const int64_t unknown[] = {99999, -4};
  ASSERT_TRUE(index->Remove(unknown, 2).ok());
  EXPECT_EQ(index->size(), 2000 - static_cast<int64_t>(removed.size()));
  const std::set<int64_t> gone(removed.begin(), removed.end());
  // Each remaining vector, as a query, finds itself first: the entries moved into the removed ones'
  // places kept their labels and codes.
  for (int64_t s = 0; s < rows.slots(); ++s) {
    if (gone.count(s)) continue;
    const std::vector<float> q(rows.row(s), rows.row(s) + kDim);
    auto hits = index->Search(q.data(), 20);
    ASSERT_TRUE(hits.ok());
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].label, s);
    for (const IndexHit& h : *hits) ASSERT_EQ(gone.count(h.label), 0u) << "removed slot " << h.label << " came back";
  }
  // A removed label may be added again, with a new vector.
  const std::vector<float> fresh = RandomUnit(rng);
  std::copy(fresh.begin(), fresh.end(), rows.values.begin() + removed[0] * kDim);
  rows.owner[static_cast<size_t>(removed[0])] = 0;
  ASSERT_TRUE(index->Add(fresh.data(), &removed[0], 1).ok());
  auto hits = index->Search(fresh.data(), 1);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].label, removed[0]);
}

TEST(IvfInt8IndexTest, BadLabelsAreRefusedAndNothingIsAdded) {
  std::mt19937 rng(23);
  const SlotRows rows = ClusteredRows(rng, 300, 4);
  std::unique_ptr<IvfInt8Index> index = Build(rows, 4, 4);
  ASSERT_NE(index, nullptr);
  const std::vector<float> two = RandomUnit(rng);
  std::vector<float> pair = two;
  pair.insert(pair.end(), two.begin(), two.end());
  const int64_t fresh_then_taken[] = {300, 17};
  absl::Status added = index->Add(pair.data(), fresh_then_taken, 2);
  EXPECT_EQ(added.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(added.message()), HasSubstr("label 17 is already in the index"));
  const int64_t negative[] = {-1};
  added = index->Add(two.data(), negative, 1);
  EXPECT_EQ(added.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(added.message()), HasSubstr("label -1"));
  EXPECT_EQ(index->size(), 300) << "a refused batch adds none of its vectors";
  EXPECT_EQ(index->Search(two.data(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->set_nprobe(5).code(), absl::StatusCode::kInvalidArgument) << "more lists than there are";
}

TEST(IvfInt8IndexTest, BadOptionsAndTooLittleTrainingAreRefusedWithTheirKey) {
  std::mt19937 rng(24);
  const SlotRows rows = ClusteredRows(rng, 50, 4);
  struct Case {
    int64_t lists;
    int nprobe;
    absl::StatusCode code;
    const char* says;
  };
  for (const Case& c :
       {Case{0, 1, absl::StatusCode::kInvalidArgument, "gallery.index.ivf_lists 0"},
        Case{8, 9, absl::StatusCode::kInvalidArgument, "gallery.index.ivf_nprobe 9"},
        Case{8, 0, absl::StatusCode::kInvalidArgument, "gallery.index.ivf_nprobe 0"},
        Case{64, 4, absl::StatusCode::kFailedPrecondition, "needs at least as many training vectors"}}) {
    IvfInt8Options options;
    options.lists = c.lists;
    options.nprobe = c.nprobe;
    auto index = IvfInt8Index::Create(&rows, options, rows.values.data(), rows.slots());
    EXPECT_EQ(index.status().code(), c.code) << c.says;
    EXPECT_THAT(std::string(index.status().message()), HasSubstr(c.says));
  }
}

TEST(IvfInt8IndexTest, TheSameDataBuildsTheSameIndex) {
  std::mt19937 rng(25);
  const SlotRows rows = ClusteredRows(rng, 3000, 32);
  std::unique_ptr<IvfInt8Index> a = Build(rows, 64, 6), b = Build(rows, 64, 6);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int t = 0; t < 30; ++t) {
    const std::vector<float> q = RandomUnit(rng);
    auto ha = a->Search(q.data(), 10), hb = b->Search(q.data(), 10);
    ASSERT_TRUE(ha.ok() && hb.ok());
    EXPECT_EQ(Labels(*ha), Labels(*hb)) << "k-means is seeded: a restart answers as before";
  }
}

}  // namespace
}  // namespace veriface::testing
