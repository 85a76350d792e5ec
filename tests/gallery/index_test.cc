// The gallery's indexes: the exact scans against brute force, the int8 kernel against its portable loop,
// deletes that never come back, a gallery that switches to its configured index when it grows past
// exact_below, a restart that rebuilds the same answers, and bad index options refused at Open.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "core/gallery/dot_kernel.h"
#include "core/gallery/flat_index.h"
#include "core/gallery/gallery.h"
#include "core/gallery/index_factory.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

// Slots 0..n-1 filled with random unit vectors, all owned by identity 0.
SlotRows Rows(std::mt19937& rng, int n) {
  SlotRows rows;
  rows.dim = kDim;
  for (int i = 0; i < n; ++i) {
    const auto v = RandomUnit(rng);
    rows.values.insert(rows.values.end(), v.begin(), v.end());
    rows.owner.push_back(0);
  }
  return rows;
}

std::vector<int64_t> BruteForce(const SlotRows& rows, const std::vector<float>& q, int k) {
  std::vector<std::pair<float, int64_t>> scored;
  for (int64_t s = 0; s < rows.slots(); ++s) {
    if (rows.owner[s] < 0) continue;
    float d = 0;
    for (int64_t j = 0; j < rows.dim; ++j) d += rows.row(s)[j] * q[j];
    scored.push_back({-d, s});
  }
  std::sort(scored.begin(), scored.end());
  std::vector<int64_t> out;
  for (int i = 0; i < k && i < static_cast<int>(scored.size()); ++i) out.push_back(scored[i].second);
  return out;
}

std::vector<int64_t> Labels(const std::vector<IndexHit>& hits) {
  std::vector<int64_t> out;
  for (const IndexHit& h : hits) out.push_back(h.label);
  return out;
}

std::vector<int64_t> AllSlots(const SlotRows& rows) {
  std::vector<int64_t> slots(rows.slots());
  std::iota(slots.begin(), slots.end(), 0);
  return slots;
}

TEST(Int8KernelTest, AgreesWithThePortableLoopExactly) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> byte(-127, 127);
  for (int dim : {128, 16, 7, 130}) {
    std::vector<int8_t> rows(37 * dim), q(dim);
    for (auto& v : rows) v = static_cast<int8_t>(byte(rng));
    for (auto& v : q) v = static_cast<int8_t>(byte(rng));
    std::vector<int32_t> fast(37), slow(37);
    DotRowsInt8(rows.data(), 37, dim, q.data(), fast.data());
    DotRowsInt8Portable(rows.data(), 37, dim, q.data(), slow.data());
    EXPECT_EQ(fast, slow) << "dim " << dim;
  }
}

TEST(FlatIndexTest, BothExactScansAgreeWithBruteForceAndForgetRemovedSlots) {
  std::mt19937 rng(11);
  SlotRows rows = Rows(rng, 3000);
  FlatIndex fp32(&rows);
  Int8FlatIndex int8(&rows, 4);
  const auto slots = AllSlots(rows);
  ASSERT_TRUE(fp32.Add(rows.values.data(), slots.data(), rows.slots()).ok());
  ASSERT_TRUE(int8.Add(rows.values.data(), slots.data(), rows.slots()).ok());
  EXPECT_EQ(int8.size(), 3000);
  EXPECT_LT(int8.memory_bytes(), fp32.memory_bytes() / 3) << "int8 codes are a quarter of the fp32 bytes";
  int int8_top1_agrees = 0;
  for (int t = 0; t < 50; ++t) {
    const auto q = RandomUnit(rng);
    const auto want = BruteForce(rows, q, 10);
    auto got = fp32.Search(q.data(), 10);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(Labels(*got), want);
    auto approx = int8.Search(q.data(), 10);
    ASSERT_TRUE(approx.ok());
    int8_top1_agrees += (!approx->empty() && (*approx)[0].label == want[0]);
  }
  EXPECT_EQ(int8_top1_agrees, 50) << "re-scored in fp32, the int8 scan's top-1 is brute force's";

  // Remove half the slots (as Collection does: free the row, then tell the index).
  std::vector<int64_t> removed;
  for (int64_t s = 0; s < rows.slots(); s += 2) removed.push_back(s);
  for (int64_t s : removed) {
    rows.owner[s] = -1;
    std::fill_n(rows.values.begin() + s * kDim, kDim, 0.0F);
  }
  ASSERT_TRUE(fp32.Remove(removed.data(), static_cast<int64_t>(removed.size())).ok());
  ASSERT_TRUE(int8.Remove(removed.data(), static_cast<int64_t>(removed.size())).ok());
  EXPECT_EQ(int8.size(), 1500);
  const std::set<int64_t> gone(removed.begin(), removed.end());
  for (int t = 0; t < 50; ++t) {
    const auto q = RandomUnit(rng);
    for (GalleryIndex* index : std::initializer_list<GalleryIndex*>{&fp32, &int8}) {
      auto hits = index->Search(q.data(), 20);
      ASSERT_TRUE(hits.ok());
      ASSERT_EQ(hits->size(), 20u);
      for (const IndexHit& h : *hits) EXPECT_EQ(gone.count(h.label), 0u) << index->name() << " returned a removed slot";
    }
  }
}

class CollectionIndexTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Gallery>> Open(const IndexOptions& index) {
    auto store = SqliteGalleryStore::Open(dir_.File("g.db"));
    if (!store.ok()) return store.status();
    GalleryLimits limits;
    return Gallery::Open(*std::move(store), kModel, kDim, limits, index);
  }
  TempDir dir_;
  std::mt19937 rng_{5};
};

TEST_F(CollectionIndexTest, AGalleryGrowingPastExactBelowSwitchesToItsIndexAndStaysRight) {
  IndexOptions options;
  options.type = "exact-int8";
  options.exact_below = 200;
  std::vector<std::pair<int64_t, int64_t>> progress;
  options.on_build_progress = [&](const std::string& name, int64_t added, int64_t total) {
    EXPECT_EQ(name, "default");
    progress.push_back({added, total});
  };
  auto gallery = Open(options);
  ASSERT_TRUE(gallery.ok()) << gallery.status();
  std::vector<std::vector<float>> first;
  for (int i = 0; i < 150; ++i) {
    first.push_back(RandomUnit(rng_));
    ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "p" + std::to_string(i), {}, {first.back()}, "", {}}).ok());
  }
  SearchInfo info;
  auto found = (*(*gallery)->Find(""))->Identify(first[7], 1, -2, &info);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(info.index, "flat-fp32") << "below exact_below the scan is exact";
  EXPECT_TRUE(info.exact);
  for (int i = 150; i < 400; ++i) {
    first.push_back(RandomUnit(rng_));
    ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "p" + std::to_string(i), {}, {first.back()}, "", {}}).ok());
  }
  ASSERT_FALSE(progress.empty()) << "building the index reports its progress";
  EXPECT_EQ(progress.back().first, progress.back().second);
  EXPECT_EQ(progress.back().second, 200) << "built once, when the gallery reached exact_below";
  for (int i = 0; i < 400; i += 13) {
    found = (*(*gallery)->Find(""))->Identify(first[i], 3, -2, &info);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(info.index, "flat-int8");
    EXPECT_FALSE(info.exact);
    ASSERT_FALSE(found->empty());
    EXPECT_EQ((*found)[0].identity_id, "p" + std::to_string(i));
    EXPECT_NEAR((*found)[0].similarity, 1.0, 1e-5) << "similarities are the exact fp32 ones";
  }
  // Deletes never come back; a restart rebuilds the same index and the same answers.
  ASSERT_TRUE((*gallery)->Delete("", "p21").ok());
  found = (*(*gallery)->Find(""))->Identify(first[21], 5, -2, &info);
  ASSERT_TRUE(found.ok());
  for (const auto& m : *found) EXPECT_NE(m.identity_id, "p21");
  const auto before = *found;
  gallery->reset();
  gallery = Open(options);
  ASSERT_TRUE(gallery.ok());
  found = (*(*gallery)->Find(""))->Identify(first[21], 5, -2, &info);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(info.index, "flat-int8") << "a gallery already past exact_below is indexed at start-up";
  ASSERT_EQ(found->size(), before.size());
  for (size_t i = 0; i < found->size(); ++i) {
    EXPECT_EQ((*found)[i].identity_id, before[i].identity_id);
    EXPECT_FLOAT_EQ((*found)[i].similarity, before[i].similarity);
  }
  auto summary = (*gallery)->ListGalleries();
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0].index.index, "flat-int8");
  EXPECT_GT(summary[0].index_memory_bytes, 0);
}

TEST_F(CollectionIndexTest, IdentitiesWithManyTemplatesStillGiveTheExactTopK) {
  // One identity's 50 templates all beat everyone else's: the index must be asked for more templates
  // until k distinct identities are in.
  auto gallery = Open({});
  ASSERT_TRUE(gallery.ok());
  const auto q = RandomUnit(rng_);
  std::vector<std::vector<float>> close;
  for (int i = 0; i < 50; ++i) {
    std::vector<float> v = q;
    for (float& x : v) x += 0.01F * std::normal_distribution<float>()(rng_);
    double n = 0;
    for (float x : v) n += x * x;
    for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
    close.push_back(v);
  }
  ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "crowd", {}, close, "", {}}).ok());
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "x" + std::to_string(i), {}, {RandomUnit(rng_)}, "", {}}).ok());
  }
  auto found = (*(*gallery)->Find(""))->Identify(q, 5, -2);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 5u);
  EXPECT_EQ((*found)[0].identity_id, "crowd");
  // The other four are the best four of the rest, by brute force.
  std::vector<std::pair<float, std::string>> rest;
  auto c = *(*gallery)->Find("");
  for (int i = 0; i < 30; ++i) {
    auto m = c->Compare(q, "x" + std::to_string(i));
    ASSERT_TRUE(m.ok());
    rest.push_back({-m->similarity, m->identity_id});
  }
  std::sort(rest.begin(), rest.end());
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*found)[i + 1].identity_id, rest[i].second);
}

TEST_F(CollectionIndexTest, BadIndexOptionsAreRefusedAtOpenByKey) {
  IndexOptions bad_type;
  bad_type.type = "magic";
  auto g = Open(bad_type);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("gallery.index.type"));
  IndexOptions bad_rerank;
  bad_rerank.rerank_factor = 0;
  g = Open(bad_rerank);
  EXPECT_THAT(g.status().message(), HasSubstr("gallery.index.rerank_factor"));
  IndexOptions bad_faiss;
  bad_faiss.type = "faiss";
  bad_faiss.faiss_factory = "Nonsense";
  g = Open(bad_faiss);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("gallery.index.faiss_factory"));
  IndexOptions bad_ivf;
  bad_ivf.type = "ivf-int8";
  bad_ivf.ivf_lists = 64;
  bad_ivf.ivf_nprobe = 65;
  g = Open(bad_ivf);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("gallery.index.ivf_nprobe 65"));
  bad_ivf.ivf_lists = 0;
  g = Open(bad_ivf);
  EXPECT_THAT(g.status().message(), HasSubstr("gallery.index.ivf_lists 0"));
}

TEST_F(CollectionIndexTest, ApproximateGalleriesFindTheirPeopleAndForgetTheDeleted) {
  IndexOptions faiss;
  faiss.type = "faiss";
  faiss.faiss_factory = "IVF16,Flat";
  faiss.nprobe = 16;  // every list: exact on this small gallery
  IndexOptions ivf;
  ivf.type = "ivf-int8";
  ivf.ivf_lists = 16;
  ivf.ivf_nprobe = 4;
  for (IndexOptions options : {faiss, ivf}) {
    SCOPED_TRACE(options.type);
    options.exact_below = 1000;
    TempDir dir;
    auto gallery = Gallery::Open(*SqliteGalleryStore::Open(dir.File("g.db")), kModel, kDim, GalleryLimits{}, options);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    std::vector<std::vector<float>> people;
    for (int i = 0; i < 40; ++i) {
      std::vector<std::vector<float>> batch = RandomUnits(rng_, 50);
      ASSERT_TRUE((*gallery)->Enroll(EnrollCommand{"", "q" + std::to_string(i), {}, batch, "", {}}).ok());
      people.push_back(batch[0]);
    }
    SearchInfo info;
    std::vector<IdentityMatch> before;
    for (int i = 0; i < 40; i += 3) {
      auto found = (*(*gallery)->Find(""))->Identify(people[i], 1, -2, &info);
      ASSERT_TRUE(found.ok()) << found.status();
      EXPECT_EQ(info.index, options.type == "faiss" ? "faiss:IVF16,Flat" : "ivf16-int8");
      EXPECT_FALSE(info.exact);
      ASSERT_EQ(found->size(), 1u);
      EXPECT_EQ((*found)[0].identity_id, "q" + std::to_string(i)) << "a template finds itself in its own list";
      before.push_back((*found)[0]);
    }
    ASSERT_TRUE((*gallery)->Delete("", "q3").ok());
    auto found = (*(*gallery)->Find(""))->Identify(people[3], 10, -2);
    ASSERT_TRUE(found.ok());
    for (const auto& m : *found) EXPECT_NE(m.identity_id, "q3");
    // A restart rebuilds the index from the store: the same answers, and the deleted stay deleted.
    gallery->reset();
    gallery = Gallery::Open(*SqliteGalleryStore::Open(dir.File("g.db")), kModel, kDim, GalleryLimits{}, options);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    found = (*(*gallery)->Find(""))->Identify(people[3], 10, -2, &info);
    ASSERT_TRUE(found.ok());
    EXPECT_FALSE(info.exact) << "a gallery already past exact_below is indexed at start-up";
    for (const auto& m : *found) EXPECT_NE(m.identity_id, "q3");
    for (int i = 0, b = 0; i < 40; i += 3, ++b) {
      if (i == 3) continue;
      auto again = (*(*gallery)->Find(""))->Identify(people[i], 1, -2);
      ASSERT_TRUE(again.ok());
      ASSERT_EQ(again->size(), 1u);
      EXPECT_EQ((*again)[0].identity_id, before[static_cast<size_t>(b)].identity_id);
      EXPECT_FLOAT_EQ((*again)[0].similarity, before[static_cast<size_t>(b)].similarity);
    }
  }
}

}  // namespace
}  // namespace veriface::testing
