// Gallery::CompareIdentities, which Verify uses when both sides are enrolled identities: the best pair
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

TEST(GalleryCompareIdentitiesTest, FindsTheMostSimilarPairOfTemplates) {
  TempDir dir;
  auto gallery = OpenGallery(dir.File("g.db"));
  ASSERT_TRUE(gallery.ok()) << gallery.status().message();
  // alice: templates at 0.1 and 1.2 rad from e0 (towards e1); bob: at 0.5 rad towards e2 and at 1.5
  // rad towards e3. The closest pair is alice[0] and bob[0].
  auto alice = (*gallery)->Enroll("alice", {}, {InPlane(1, 1.2), InPlane(1, 0.1)});
  auto bob = (*gallery)->Enroll("bob", {}, {InPlane(3, 1.5), InPlane(2, 0.5)});
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto m = (*gallery)->CompareIdentities("alice", "bob");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->template_a, (*alice)[1]);
  EXPECT_EQ(m->template_b, (*bob)[1]);
  EXPECT_NEAR(m->similarity, std::cos(0.1) * std::cos(0.5), 1e-5);
  // Symmetric.
  auto back = (*gallery)->CompareIdentities("bob", "alice");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->template_a, (*bob)[1]);
  EXPECT_EQ(back->template_b, (*alice)[1]);
  EXPECT_FLOAT_EQ(back->similarity, m->similarity);
  // An identity with itself: its templates' self-similarity.
  auto self = (*gallery)->CompareIdentities("alice", "alice");
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(self->similarity, 1.0, 1e-5);
  EXPECT_EQ(self->template_a, self->template_b);
}

TEST(GalleryCompareIdentitiesTest, UnknownIdentitiesAreNotFound) {
  TempDir dir;
  auto gallery = OpenGallery(dir.File("g.db"));
  ASSERT_TRUE(gallery.ok());
  ASSERT_TRUE((*gallery)->Enroll("alice", {}, {InPlane(1, 0.3)}).ok());
  auto m = (*gallery)->CompareIdentities("alice", "carol");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("carol"));
  m = (*gallery)->CompareIdentities("dave", "alice");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("dave"));
  // After a deletion the identity is gone for comparisons too.
  ASSERT_TRUE((*gallery)->Enroll("carol", {}, {InPlane(2, 0.3)}).ok());
  ASSERT_TRUE((*gallery)->CompareIdentities("alice", "carol").ok());
  ASSERT_TRUE((*gallery)->Delete("carol").ok());
  EXPECT_EQ((*gallery)->CompareIdentities("alice", "carol").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace veriface::testing
