// Collection::CompareIdentities, which Verify uses when both sides are enrolled identities: the best pair
// of templates, on a real SQLite-backed gallery with embeddings whose similarities are known.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/gallery/gallery_testing.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

// A unit vector at angle `radians` from e0 in the plane of e0 and e_axis.
std::vector<float> InPlane(int axis, double radians) {
  std::vector<float> v(kDim, 0.0F);
  v[0] = static_cast<float>(std::cos(radians));
  v[static_cast<size_t>(axis)] = static_cast<float>(std::sin(radians));
  return v;
}

absl::StatusOr<std::vector<std::string>> Enrol(Gallery& gallery, const std::string& id,
                                               std::vector<std::vector<float>> embeddings,
                                               const std::string& name = "") {
  auto out = gallery.Enroll(EnrollCommand{name, id, {}, std::move(embeddings), "", {}});
  if (!out.ok()) return out.status();
  return out->template_ids;
}

// Both identities in the default gallery.
absl::StatusOr<IdentityPairMatch> Compare(const Gallery& gallery, const std::string& a, const std::string& b) {
  auto c = gallery.Find("");
  if (!c.ok()) return c.status();
  return (*c)->CompareIdentities(a, **c, b);
}

TEST(GalleryCompareIdentitiesTest, FindsTheMostSimilarPairOfTemplates) {
  TempDir dir;
  auto gallery = OpenGallery(dir.File("g.db"));
  ASSERT_TRUE(gallery.ok()) << gallery.status().message();
  // alice: templates at 0.1 and 1.2 rad from e0 (towards e1); bob: at 0.5 rad towards e2 and at 1.5
  // rad towards e3. The closest pair is alice[0] and bob[0].
  auto alice = Enrol(**gallery, "alice", {InPlane(1, 1.2), InPlane(1, 0.1)});
  auto bob = Enrol(**gallery, "bob", {InPlane(3, 1.5), InPlane(2, 0.5)});
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto m = Compare(**gallery, "alice", "bob");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->template_a, (*alice)[1]);
  EXPECT_EQ(m->template_b, (*bob)[1]);
  EXPECT_NEAR(m->similarity, std::cos(0.1) * std::cos(0.5), 1e-5);
  // Symmetric.
  auto back = Compare(**gallery, "bob", "alice");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->template_a, (*bob)[1]);
  EXPECT_EQ(back->template_b, (*alice)[1]);
  EXPECT_FLOAT_EQ(back->similarity, m->similarity);
  // An identity with itself: its templates' self-similarity.
  auto self = Compare(**gallery, "alice", "alice");
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(self->similarity, 1.0, 1e-5);
  EXPECT_EQ(self->template_a, self->template_b);
}

TEST(GalleryCompareIdentitiesTest, UnknownIdentitiesAreNotFound) {
  TempDir dir;
  auto gallery = OpenGallery(dir.File("g.db"));
  ASSERT_TRUE(gallery.ok());
  ASSERT_TRUE(Enrol(**gallery, "alice", {InPlane(1, 0.3)}).ok());
  auto m = Compare(**gallery, "alice", "carol");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("carol"));
  m = Compare(**gallery, "dave", "alice");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("dave"));
  // After a deletion the identity is gone for comparisons too.
  ASSERT_TRUE(Enrol(**gallery, "carol", {InPlane(2, 0.3)}).ok());
  ASSERT_TRUE(Compare(**gallery, "alice", "carol").ok());
  ASSERT_TRUE((*gallery)->Delete("", "carol").ok());
  EXPECT_EQ(Compare(**gallery, "alice", "carol").status().code(), absl::StatusCode::kNotFound);
}

TEST(GalleryCompareIdentitiesTest, ComparesIdentitiesOfTwoGalleries) {
  TempDir dir;
  auto gallery = OpenGallery(dir.File("g.db"));
  ASSERT_TRUE(gallery.ok());
  ASSERT_TRUE((*gallery)->CreateGallery("other").ok());
  auto alice = Enrol(**gallery, "alice", {InPlane(1, 0.2)});
  auto twin = Enrol(**gallery, "alice", {InPlane(2, 0.4)}, "other");  // the same id, another person
  ASSERT_TRUE(alice.ok() && twin.ok());
  auto here = (*gallery)->Find("");
  auto there = (*gallery)->Find("other");
  ASSERT_TRUE(here.ok() && there.ok());
  auto m = (*here)->CompareIdentities("alice", **there, "alice");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->template_a, (*alice)[0]);
  EXPECT_EQ(m->template_b, (*twin)[0]);
  EXPECT_NEAR(m->similarity, std::cos(0.2) * std::cos(0.4), 1e-5);
  auto missing = (*there)->CompareIdentities("alice", **here, "bob");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("gallery \"default\""));
}

}  // namespace
}  // namespace veriface::testing
