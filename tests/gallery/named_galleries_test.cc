// Named galleries and idempotent writes over a real SQLite file: creating, listing and deleting
// galleries, keeping their people apart, per-gallery limits, names, restarts; request ids that make a
// retried Enroll or Delete return the first result; and Sync on a store only this process writes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class NamedGalleriesTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  std::string DbPath() const { return dir_.File("gallery.db"); }
  void Reopen(GalleryLimits limits = {}) {
    gallery_.reset();
    auto gallery = OpenGallery(DbPath(), kModel, kDim, limits);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    gallery_ = std::move(*gallery);
  }
  std::shared_ptr<const Collection> In(const std::string& gallery) const {
    return CollectionOrEmpty(*gallery_, gallery);
  }
  absl::StatusOr<EnrollOutcome> Enroll(const std::string& gallery, const std::string& id, int templates,
                                       const std::string& request_id = "",
                                       const std::map<std::string, std::string>& metadata = {}) {
    return gallery_->Enroll(EnrollCommand{gallery, id, metadata, RandomUnits(rng_, templates), request_id, {}});
  }
  std::vector<std::string> MustEnroll(const std::string& gallery, const std::string& id,
                                      const std::vector<std::vector<float>>& embeddings,
                                      const std::map<std::string, std::string>& metadata = {}) {
    auto out = gallery_->Enroll(EnrollCommand{gallery, id, metadata, embeddings, "", {}});
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->template_ids : std::vector<std::string>{};
  }
  void MustCreate(const std::string& name, int64_t max_templates = 0) {
    auto created = gallery_->CreateGallery(name, max_templates);
    ASSERT_TRUE(created.ok()) << created.status();
  }
  std::vector<std::string> GalleryNames() const {
    std::vector<std::string> names;
    for (const GallerySummary& g : gallery_->ListGalleries()) names.push_back(g.record.name);
    return names;
  }

  TempDir dir_;
  std::mt19937 rng_{4321};
  std::unique_ptr<Gallery> gallery_;
};

// ---- Named galleries ----

TEST_F(NamedGalleriesTest, CreateListAndDeleteGalleries) {
  // A new file has just the default gallery, at the deployment's limit.
  auto initial = gallery_->ListGalleries();
  ASSERT_EQ(initial.size(), 1u);
  EXPECT_EQ(initial[0].record.name, kDefaultGalleryName);
  EXPECT_EQ(initial[0].max_templates, GalleryLimits{}.max_templates);
  EXPECT_EQ(gallery_->gallery_count(), 1);

  auto lobby = gallery_->CreateGallery("lobby");
  ASSERT_TRUE(lobby.ok()) << lobby.status();
  EXPECT_EQ(lobby->record.name, "lobby");
  EXPECT_GT(lobby->record.created_unix_ms, 0);
  EXPECT_EQ(lobby->record.max_templates, 0);
  EXPECT_EQ(lobby->max_templates, GalleryLimits{}.max_templates) << "0 means the deployment's limit";
  EXPECT_EQ(lobby->identities, 0);
  MustCreate("Site-2.east_wing", 50);
  EXPECT_THAT(GalleryNames(), ElementsAre("Site-2.east_wing", "default", "lobby"));  // by name, bytewise
  EXPECT_EQ(gallery_->gallery_count(), 3);

  auto again = gallery_->CreateGallery("lobby");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("\"lobby\""));
  EXPECT_EQ(gallery_->CreateGallery(kDefaultGalleryName).status().code(), absl::StatusCode::kAlreadyExists);

  MustEnroll("lobby", "alice", RandomUnits(rng_, 2));
  MustEnroll("lobby", "bob", RandomUnits(rng_, 1));
  MustEnroll("", "carol", RandomUnits(rng_, 1));
  for (const GallerySummary& g : gallery_->ListGalleries()) {
    if (g.record.name == "lobby") {
      EXPECT_EQ(g.identities, 2);
      EXPECT_EQ(g.templates, 3);
    }
    if (g.record.name == "Site-2.east_wing") {
      EXPECT_EQ(g.max_templates, 50);
    }
  }
  EXPECT_EQ(gallery_->identity_count(), 3);
  EXPECT_EQ(gallery_->template_count(), 4);

  auto deleted = gallery_->DeleteGallery("lobby");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->record.name, "lobby");
  EXPECT_EQ(deleted->identities, 2);
  EXPECT_EQ(deleted->templates, 3);
  EXPECT_THAT(GalleryNames(), ElementsAre("Site-2.east_wing", "default"));
  EXPECT_EQ(gallery_->Find("lobby").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gallery_->DeleteGallery("lobby").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gallery_->identity_count(), 1);
  EXPECT_EQ(gallery_->template_count(), 1);

  // The name can be used again, for a gallery that starts empty, also after a restart.
  MustCreate("lobby");
  EXPECT_EQ(In("lobby")->identity_count(), 0);
  EXPECT_EQ(In("lobby")->Get("alice").status().code(), absl::StatusCode::kNotFound);
  Reopen();
  EXPECT_THAT(GalleryNames(), ElementsAre("Site-2.east_wing", "default", "lobby"));
  EXPECT_EQ(In("lobby")->identity_count(), 0);
  EXPECT_TRUE(In("")->Get("carol").ok());
}

TEST_F(NamedGalleriesTest, TheSameIdentityIdInTwoGalleriesIsTwoPeople) {
  MustCreate("north");
  const auto south_face = RandomUnit(rng_), north_face = RandomUnit(rng_);
  const auto south_ids = MustEnroll("", "alice", {south_face}, {{"city", "Lyon"}});
  const auto north_ids = MustEnroll("north", "alice", {north_face, RandomUnit(rng_)}, {{"city", "Oslo"}});
  // Other people in both, so that Identify has a choice.
  for (int i = 0; i < 20; ++i) {
    MustEnroll("", "s" + std::to_string(i), {RandomUnit(rng_)});
    MustEnroll("north", "n" + std::to_string(i), {RandomUnit(rng_)});
  }
  EXPECT_EQ(gallery_->identity_count(), 42) << "two alices";

  const auto def = In(""), north = In("north");
  auto a = def->Get("alice"), b = north->Get("alice");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->template_ids, south_ids);
  EXPECT_EQ(b->template_ids, north_ids);
  EXPECT_EQ(a->gallery, kDefaultGalleryName);
  EXPECT_EQ(b->gallery, "north");
  EXPECT_EQ(a->record.metadata.at("city"), "Lyon");
  EXPECT_EQ(b->record.metadata.at("city"), "Oslo");

  // Searching one gallery with the other's face never finds the other's templates.
  auto in_default = def->Identify(north_face, 100, -1.0f);
  ASSERT_TRUE(in_default.ok());
  ASSERT_EQ(in_default->size(), 21u);
  for (const IdentityMatch& m : *in_default) {
    EXPECT_NE(m.best_template_id, north_ids[0]);
    EXPECT_NE(m.best_template_id, north_ids[1]);
    if (m.identity_id == "alice") {
      EXPECT_EQ(m.best_template_id, south_ids[0]);
      EXPECT_NEAR(m.similarity, Dot(north_face, south_face), 1e-5);
    }
  }
  auto strict = def->Identify(north_face, 5, 0.5f);
  ASSERT_TRUE(strict.ok());
  EXPECT_TRUE(strict->empty()) << "the north alice's face matches nobody in the default gallery";
  auto in_north = north->Identify(north_face, 1, 0.5f);
  ASSERT_TRUE(in_north.ok());
  ASSERT_EQ(in_north->size(), 1u);
  EXPECT_EQ((*in_north)[0].identity_id, "alice");
  EXPECT_EQ((*in_north)[0].best_template_id, north_ids[0]);
  auto compared = def->Compare(north_face, "alice");
  ASSERT_TRUE(compared.ok());
  EXPECT_EQ(compared->best_template_id, south_ids[0]);

  // Across collections: the two alices compare as two different faces.
  auto across = def->CompareIdentities("alice", *north, "alice");
  ASSERT_TRUE(across.ok()) << across.status();
  EXPECT_EQ(across->template_a, south_ids[0]);
  EXPECT_THAT(north_ids, ::testing::Contains(across->template_b));
  EXPECT_LT(across->similarity, 0.5f);
  auto missing = def->CompareIdentities("alice", *north, "s0");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no identity \"s0\" in gallery \"north\"");

  // Deleting one alice leaves the other, also after a restart.
  auto deleted = gallery_->Delete("north", "alice");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->gallery, "north");
  EXPECT_EQ(deleted->templates_deleted, 2);
  EXPECT_EQ(north->Get("alice").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(def->Get("alice").ok());
  Reopen();
  EXPECT_EQ(In("north")->Get("alice").status().code(), absl::StatusCode::kNotFound);
  auto kept = In("")->Get("alice");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->template_ids, south_ids);
}

TEST_F(NamedGalleriesTest, AGallerysOwnTemplateLimitIsEnforcedApartFromTheOthers) {
  GalleryLimits limits;
  limits.max_templates = 10;
  Reopen(limits);
  auto small = gallery_->CreateGallery("small", 3);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->record.max_templates, 3);
  EXPECT_EQ(small->max_templates, 3);
  EXPECT_EQ(In("small")->max_templates(), 3);
  ASSERT_TRUE(Enroll("small", "a", 2).ok());
  ASSERT_TRUE(Enroll("small", "b", 1).ok());
  auto full = Enroll("small", "c", 1);
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("gallery \"small\" holds 3 templates"));
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("limit of 3"));
  EXPECT_EQ(Enroll("small", "a", 1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(In("small")->template_count(), 3);
  EXPECT_EQ(In("small")->Get("c").status().code(), absl::StatusCode::kNotFound);
  // The default gallery, at the deployment's limit, still takes people.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Enroll("", "d" + std::to_string(i), 1).ok()) << i;
  EXPECT_EQ(Enroll("", "d10", 1).status().code(), absl::StatusCode::kResourceExhausted);

  // A limit above the deployment's is refused; so is a negative one.
  auto too_big = gallery_->CreateGallery("big", 11);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("max_templates 11 is not in [0, 10]"));
  EXPECT_EQ(gallery_->CreateGallery("negative", -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gallery_->Find("big").status().code(), absl::StatusCode::kNotFound);
  auto at_limit = gallery_->CreateGallery("exact", 10);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();

  // The gallery's limit is stored with it; freed room can be used again.
  Reopen(limits);
  EXPECT_EQ(In("small")->max_templates(), 3);
  EXPECT_EQ(Enroll("small", "c", 1).status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(gallery_->Delete("small", "b").ok());
  ASSERT_TRUE(Enroll("small", "c", 1).ok());
  // A deployment that later lowers its limit below a gallery's own caps that gallery too.
  limits.max_templates = 2;
  Reopen(limits);
  EXPECT_EQ(In("small")->max_templates(), 2);
  EXPECT_EQ(Enroll("small", "e", 1).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(NamedGalleriesTest, BadGalleryNamesAreInvalidArgument) {
  const std::vector<std::string> bad = {
      "../x",
      "a/b",
      ".hidden",
      "-dash",
      "_under",
      "with space",
      "tab\there",
      "galería",
      "caf\xc3\xa9",
      "bad\xff",
      std::string("nul\0x", 5),
      std::string(65, 'g'),
  };
  for (const std::string& name : bad) {
    auto created = gallery_->CreateGallery(name);
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(gallery_->Find(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(Enroll(name, "alice", 1).status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(gallery_->Delete(name, "alice").status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(gallery_->DeleteGallery(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  auto traversal = gallery_->CreateGallery("../x");
  EXPECT_THAT(std::string(traversal.status().message()), HasSubstr("\"../x\""));
  EXPECT_THAT(std::string(traversal.status().message()), HasSubstr("ASCII letters, digits"));
  auto long_name = gallery_->CreateGallery(std::string(65, 'g'));
  EXPECT_THAT(std::string(long_name.status().message()), HasSubstr("65 bytes long; the limit is 64"));
  auto empty = gallery_->CreateGallery("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));
  EXPECT_EQ(gallery_->gallery_count(), 1) << "nothing was created";
  EXPECT_EQ(gallery_->identity_count(), 0);

  // The edges of what is allowed.
  MustCreate(std::string(64, 'g'));
  MustCreate("0-start.with_digit");
  EXPECT_TRUE(gallery_->Find(std::string(64, 'g')).ok());
  GalleryLimits limits;
  limits.max_gallery_name_length = 8;
  Reopen(limits);
  EXPECT_EQ(gallery_->CreateGallery("ninechars").status().code(), absl::StatusCode::kInvalidArgument);
  MustCreate("eight-ch");
}

TEST_F(NamedGalleriesTest, TheDefaultGalleryCannotBeDeleted) {
  MustEnroll("", "alice", RandomUnits(rng_, 1));
  auto refused = gallery_->DeleteGallery(kDefaultGalleryName);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("default gallery cannot be deleted"));
  // "" names the default gallery for reads and writes, but is not accepted as a name to delete.
  EXPECT_FALSE(gallery_->DeleteGallery("").ok());
  ASSERT_TRUE(gallery_->Find(kDefaultGalleryName).ok());
  EXPECT_EQ(gallery_->Find(kDefaultGalleryName)->get(), gallery_->Find("")->get()) << "\"\" is the default";
  EXPECT_TRUE(In("")->Get("alice").ok());
  Reopen();
  EXPECT_TRUE(In(kDefaultGalleryName)->Get("alice").ok());
  // Writes may name it either way.
  auto named = Enroll(kDefaultGalleryName, "bob", 1);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->gallery, kDefaultGalleryName);
  auto deleted = gallery_->Delete(kDefaultGalleryName, "alice");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->gallery, kDefaultGalleryName);
  EXPECT_EQ(In("")->identity_count(), 1);
}

TEST_F(NamedGalleriesTest, AnUnknownGalleryIsNotFound) {
  MustEnroll("", "alice", RandomUnits(rng_, 1));
  auto find = gallery_->Find("nowhere");
  EXPECT_EQ(find.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(find.status().message()), HasSubstr("no gallery \"nowhere\""));
  auto enrol = Enroll("nowhere", "alice", 1);
  EXPECT_EQ(enrol.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(enrol.status().message()), HasSubstr("\"nowhere\""));
  auto del = gallery_->Delete("nowhere", "alice");
  EXPECT_EQ(del.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(del.status().message()), HasSubstr("\"nowhere\""));
  EXPECT_EQ(gallery_->DeleteGallery("nowhere").status().code(), absl::StatusCode::kNotFound);
  // An unknown gallery is never created on the way, and the default gallery's alice is untouched.
  EXPECT_EQ(gallery_->gallery_count(), 1);
  EXPECT_TRUE(In("")->Get("alice").ok());
  // An unknown identity in a known gallery names both.
  MustCreate("known");
  auto no_one = gallery_->Delete("known", "alice");
  EXPECT_EQ(no_one.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(no_one.status().message(), "no identity \"alice\" in gallery \"known\"");
}

TEST_F(NamedGalleriesTest, TheNumberOfGalleriesIsLimited) {
  GalleryLimits limits;
  limits.max_galleries = 3;  // the default gallery counts
  Reopen(limits);
  MustCreate("one");
  MustCreate("two");
  auto third = gallery_->CreateGallery("three");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.status().message()), HasSubstr("there are 3 galleries; the limit is 3"));
  EXPECT_EQ(gallery_->Find("three").status().code(), absl::StatusCode::kNotFound);
  Reopen(limits);
  EXPECT_EQ(gallery_->gallery_count(), 3);
  EXPECT_EQ(gallery_->CreateGallery("three").status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(gallery_->DeleteGallery("one").ok());
  MustCreate("three");
  EXPECT_THAT(GalleryNames(), ElementsAre("default", "three", "two"));
}

TEST_F(NamedGalleriesTest, EverythingSurvivesReopeningTheFile) {
  MustCreate("alpha", 100);
  MustCreate("beta");
  const auto a_face = RandomUnit(rng_);
  std::map<std::string, std::vector<std::string>> ids;  // "gallery/identity" -> template ids
  ids["alpha/p"] = MustEnroll("alpha", "p", {a_face, RandomUnit(rng_)}, {{"role", "guard"}});
  ids["beta/p"] = MustEnroll("beta", "p", RandomUnits(rng_, 1), {{"role", "visitor"}});
  ids["default/q"] = MustEnroll("", "q", RandomUnits(rng_, 3));
  MustEnroll("beta", "gone", RandomUnits(rng_, 1));
  ASSERT_TRUE(gallery_->Delete("beta", "gone").ok());
  MustCreate("deleted");
  MustEnroll("deleted", "p", RandomUnits(rng_, 1));
  ASSERT_TRUE(gallery_->DeleteGallery("deleted").ok());
  const auto before = gallery_->ListGalleries();
  const auto alpha_before = In("alpha")->Get("p");
  ASSERT_TRUE(alpha_before.ok());

  Reopen();
  const auto after = gallery_->ListGalleries();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].record.name, before[i].record.name);
    EXPECT_EQ(after[i].record.created_unix_ms, before[i].record.created_unix_ms) << after[i].record.name;
    EXPECT_EQ(after[i].record.max_templates, before[i].record.max_templates) << after[i].record.name;
    EXPECT_EQ(after[i].max_templates, before[i].max_templates) << after[i].record.name;
    EXPECT_EQ(after[i].identities, before[i].identities) << after[i].record.name;
    EXPECT_EQ(after[i].templates, before[i].templates) << after[i].record.name;
  }
  EXPECT_THAT(GalleryNames(), ElementsAre("alpha", "beta", "default"));
  for (const auto& [key, templates] : ids) {
    const std::string gallery = key.substr(0, key.find('/')), id = key.substr(key.find('/') + 1);
    auto info = In(gallery)->Get(id);
    ASSERT_TRUE(info.ok()) << key;
    EXPECT_EQ(info->template_ids, templates) << key;
    EXPECT_EQ(info->gallery, gallery) << key;
  }
  auto alpha_after = In("alpha")->Get("p");
  ASSERT_TRUE(alpha_after.ok());
  EXPECT_EQ(alpha_after->record.metadata, alpha_before->record.metadata);
  EXPECT_EQ(alpha_after->record.created_unix_ms, alpha_before->record.created_unix_ms);
  EXPECT_EQ(In("beta")->Get("p")->record.metadata.at("role"), "visitor");
  EXPECT_EQ(In("beta")->Get("gone").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gallery_->Find("deleted").status().code(), absl::StatusCode::kNotFound);
  auto top = In("alpha")->Identify(a_face, 1, 0.9f);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].best_template_id, ids["alpha/p"][0]);
  EXPECT_EQ(In("alpha")->max_templates(), 100);
}

TEST_F(NamedGalleriesTest, ACollectionStaysUsableByItsHolderAfterItsGalleryIsDeleted) {
  MustCreate("temp");
  const auto face = RandomUnit(rng_);
  const auto ids = MustEnroll("temp", "alice", {face});
  const auto held = In("temp");
  ASSERT_TRUE(gallery_->DeleteGallery("temp").ok());
  // The holder still reads what the gallery held when it was taken...
  auto top = held->Identify(face, 1, 0.9f);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].best_template_id, ids[0]);
  // ...while the gallery is gone for everyone else, and a new one of that name is another gallery.
  EXPECT_EQ(Enroll("temp", "bob", 1).status().code(), absl::StatusCode::kNotFound);
  MustCreate("temp");
  ASSERT_TRUE(Enroll("temp", "bob", 1).ok());
  EXPECT_EQ(In("temp")->Get("alice").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(held->Get("bob").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NamedGalleriesTest, ReadersOfOneGalleryRunWhileOthersAreCreatedAndDeleted) {
  std::vector<std::vector<float>> faces;
  for (int i = 0; i < 10; ++i) {
    faces.push_back(RandomUnit(rng_));
    MustEnroll("", "stable-" + std::to_string(i), {faces.back()});
  }
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, wrong{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 local(r);
      while (!stop.load()) {
        const int i = std::uniform_int_distribution<int>(0, 9)(local);
        auto top = In("")->Identify(faces[i], 1, 0.5f);
        if (!top.ok() || top->size() != 1 || (*top)[0].identity_id != "stable-" + std::to_string(i)) ++wrong;
        // A churning gallery may come and go under the reader; when found it answers.
        auto churn = gallery_->Find("churn");
        if (churn.ok() && !(*churn)->Identify(faces[i], 3, -1.0f).ok()) ++wrong;
        if (!churn.ok() && churn.status().code() != absl::StatusCode::kNotFound) ++wrong;
        gallery_->ListGalleries();
        ++reads;
      }
    });
  }
  std::thread writer([&] {
    std::mt19937 local(7);
    for (int i = 0; i < 15; ++i) {
      if (!gallery_->CreateGallery("churn").ok()) ++wrong;
      for (int j = 0; j < 3; ++j) {
        if (!gallery_->Enroll(EnrollCommand{"churn", "c" + std::to_string(j), {}, {RandomUnit(local)}, "", {}}).ok()) {
          ++wrong;
        }
      }
      if (!gallery_->DeleteGallery("churn").ok()) ++wrong;
    }
  });
  writer.join();
  while (reads.load() < 50) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(gallery_->gallery_count(), 1);
  EXPECT_EQ(gallery_->identity_count(), 10);
}

// ---- Request ids ----

TEST_F(NamedGalleriesTest, ARetriedEnrollReturnsTheFirstResultAndAddsNothing) {
  MustCreate("site");
  auto first = Enroll("site", "alice", 2, "req-enrol-1", {{"name", "Alice"}});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->replayed);
  ASSERT_EQ(first->template_ids.size(), 2u);
  // The retry carries new embeddings (the client embedded again) and other metadata: still the first result.
  auto retry = Enroll("site", "alice", 3, "req-enrol-1", {{"name", "Someone else"}});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->gallery, "site");
  EXPECT_EQ(retry->template_ids, first->template_ids);
  auto info = In("site")->Get("alice");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->template_ids, first->template_ids);
  EXPECT_EQ(info->record.metadata.at("name"), "Alice");
  EXPECT_EQ(gallery_->template_count(), 2);
  // A new request id is a new enrolment.
  auto second = Enroll("site", "alice", 1, "req-enrol-2");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->replayed);
  EXPECT_EQ(In("site")->template_count(), 3);

  // After the process died and came back (the file reopened), the retry is still answered.
  Reopen();
  auto after_crash = Enroll("site", "alice", 2, "req-enrol-1");
  ASSERT_TRUE(after_crash.ok()) << after_crash.status();
  EXPECT_TRUE(after_crash->replayed);
  EXPECT_EQ(after_crash->template_ids, first->template_ids);
  EXPECT_EQ(In("site")->template_count(), 3);
  // A request id that is only replayed never hits a limit: the first result is returned, not a new write.
  GalleryLimits limits;
  limits.max_templates_per_identity = 3;
  Reopen(limits);
  auto at_limit = Enroll("site", "alice", 2, "req-enrol-2");
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_TRUE(at_limit->replayed);
  EXPECT_EQ(at_limit->template_ids, second->template_ids);
  // "" and "default" name the same gallery, so a retry may name it either way.
  auto unnamed = Enroll("", "dora", 1, "req-dora");
  ASSERT_TRUE(unnamed.ok());
  auto named = Enroll(kDefaultGalleryName, "dora", 1, "req-dora");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_TRUE(named->replayed);
  EXPECT_EQ(named->template_ids, unnamed->template_ids);
  // Without a request id every call is a new enrolment.
  ASSERT_TRUE(Enroll("", "bob", 1).ok());
  ASSERT_TRUE(Enroll("", "bob", 1).ok());
  EXPECT_EQ(In("")->Get("bob")->template_ids.size(), 2u);
}

TEST_F(NamedGalleriesTest, ARequestIdUsedForAnotherRequestIsFailedPrecondition) {
  MustCreate("other");
  ASSERT_TRUE(Enroll("", "alice", 1, "req-1").ok());
  ASSERT_TRUE(Enroll("other", "alice", 1).ok());
  ASSERT_TRUE(Enroll("", "bob", 1).ok());
  const int64_t templates = gallery_->template_count();
  // Another identity, the same identity in another gallery, or a delete: all refused, nothing done.
  auto other_identity = Enroll("", "bob", 1, "req-1");
  EXPECT_EQ(other_identity.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other_identity.status().message()), HasSubstr("\"req-1\""));
  EXPECT_THAT(std::string(other_identity.status().message()), HasSubstr("already used for another request"));
  EXPECT_EQ(Enroll("other", "alice", 1, "req-1").status().code(), absl::StatusCode::kFailedPrecondition);
  auto as_delete = gallery_->Delete("", "alice", "req-1");
  EXPECT_EQ(as_delete.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(as_delete.status().message()), HasSubstr("Enroll"));
  EXPECT_EQ(gallery_->template_count(), templates);
  EXPECT_TRUE(In("")->Get("alice").ok()) << "the refused delete deleted nothing";

  // And the other way round: a delete's request id cannot be reused for an enrolment or another delete.
  ASSERT_TRUE(gallery_->Delete("", "bob", "req-del").ok());
  EXPECT_EQ(Enroll("", "bob", 1, "req-del").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gallery_->Delete("other", "alice", "req-del").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(In("other")->Get("alice").ok());
  // The same after a restart.
  Reopen();
  EXPECT_EQ(Enroll("other", "alice", 1, "req-1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gallery_->Delete("", "alice", "req-1").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(NamedGalleriesTest, ARetriedDeleteReturnsTheFirstResultInsteadOfNotFound) {
  MustCreate("site");
  ASSERT_TRUE(Enroll("site", "alice", 3).ok());
  auto first = gallery_->Delete("site", "alice", "req-del-1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->replayed);
  EXPECT_EQ(first->gallery, "site");
  EXPECT_EQ(first->templates_deleted, 3);
  auto retry = gallery_->Delete("site", "alice", "req-del-1");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->gallery, "site");
  EXPECT_EQ(retry->templates_deleted, 3);
  // Without the request id, or with a new one, the identity is simply not there.
  EXPECT_EQ(gallery_->Delete("site", "alice").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(gallery_->Delete("site", "alice", "req-del-2").status().code(), absl::StatusCode::kNotFound);
  // A delete that found nobody left no receipt: once the identity exists, the same id deletes it.
  ASSERT_TRUE(Enroll("site", "alice", 1).ok());
  auto later = gallery_->Delete("site", "alice", "req-del-2");
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_FALSE(later->replayed);
  EXPECT_EQ(later->templates_deleted, 1);
  // The retry after a restart.
  Reopen();
  auto after_crash = gallery_->Delete("site", "alice", "req-del-1");
  ASSERT_TRUE(after_crash.ok()) << after_crash.status();
  EXPECT_TRUE(after_crash->replayed);
  EXPECT_EQ(after_crash->templates_deleted, 3);
  // Re-enrolled since, the identity is not deleted again by a retry of the old request.
  ASSERT_TRUE(Enroll("site", "alice", 2).ok());
  auto stale = gallery_->Delete("site", "alice", "req-del-1");
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(stale->replayed);
  EXPECT_EQ(In("site")->Get("alice")->template_ids.size(), 2u);
}

TEST_F(NamedGalleriesTest, PrunedReceiptsAreForgotten) {
  auto first = Enroll("", "alice", 1, "req-old");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(Enroll("", "bob", 1).ok());
  ASSERT_TRUE(gallery_->Delete("", "bob", "req-old-delete").ok());
  // The store forgets receipts older than the moment given (the gallery prunes at the receipt TTL).
  gallery_.reset();
  {
    auto store = SqliteGalleryStore::Open(DbPath());
    ASSERT_TRUE(store.ok());
    auto receipt = (*store)->FindReceipt("req-old");
    ASSERT_TRUE(receipt.ok());
    ASSERT_TRUE(receipt->has_value());
    const int64_t after_everything = (*receipt)->created_unix_ms + 60'000;
    ASSERT_TRUE((*store)->PruneReceipts(after_everything).ok());
    receipt = (*store)->FindReceipt("req-old");
    ASSERT_TRUE(receipt.ok());
    EXPECT_FALSE(receipt->has_value());
  }
  Reopen();
  // A retry after pruning is a new request: it enrols again.
  auto retry = Enroll("", "alice", 1, "req-old");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->replayed);
  EXPECT_NE(retry->template_ids, first->template_ids);
  EXPECT_EQ(In("")->Get("alice")->template_ids.size(), 2u);
  // And the pruned delete's id is free again too.
  EXPECT_EQ(gallery_->Delete("", "bob", "req-old-delete").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NamedGalleriesTest, TheGalleryPrunesReceiptsPastTheirTimeToLiveWhenOpened) {
  auto first = Enroll("", "alice", 1, "req-ttl");
  ASSERT_TRUE(first.ok());
  // Within the default TTL (a day), a reopen keeps the receipt.
  Reopen();
  auto kept = Enroll("", "alice", 1, "req-ttl");
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE(kept->replayed);
  // With a TTL of 0 every receipt written before the moment of opening is past it.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  GalleryLimits limits;
  limits.receipt_ttl_ms = 0;
  Reopen(limits);
  auto again = Enroll("", "alice", 1, "req-ttl");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->replayed);
  EXPECT_EQ(In("")->Get("alice")->template_ids.size(), 2u);
}

TEST_F(NamedGalleriesTest, ARequestIdThatIsNotValidTextIsInvalidArgument) {
  ASSERT_TRUE(Enroll("", "alice", 1).ok());
  const std::vector<std::string> bad = {
      "req\x01",      "tab\there",          "line\nbreak", "del\x7f", std::string("nul\0x", 5),
      "bad\xff utf8", std::string(257, 'r')};
  for (const std::string& id : bad) {
    auto enrol = Enroll("", "bob", 1, id);
    EXPECT_EQ(enrol.status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_THAT(std::string(enrol.status().message()), HasSubstr("request id")) << id;
    EXPECT_EQ(gallery_->Delete("", "alice", id).status().code(), absl::StatusCode::kInvalidArgument) << id;
  }
  auto too_long = Enroll("", "bob", 1, std::string(257, 'r'));
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("257 bytes long; the limit is 256"));
  EXPECT_EQ(In("")->Get("bob").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(In("")->Get("alice").ok());
  // The longest allowed, and any other UTF-8 text, are fine.
  ASSERT_TRUE(Enroll("", "bob", 1, std::string(256, 'r')).ok());
  ASSERT_TRUE(Enroll("", "carol", 1, "réquête-✓-1").ok());
  auto replay = Enroll("", "carol", 1, "réquête-✓-1");
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE(replay->replayed);
}

// ---- Sync ----

TEST_F(NamedGalleriesTest, SyncOnASqliteGalleryIsANoOpThatSucceeds) {
  EXPECT_FALSE(gallery_->shared());
  EXPECT_EQ(gallery_->store_kind(), "sqlite");
  MustCreate("site");
  const auto ids = MustEnroll("site", "alice", RandomUnits(rng_, 2));
  for (int i = 0; i < 3; ++i) {
    auto report = gallery_->Sync();
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->changes, 0);
    EXPECT_TRUE(report->lag_seconds.empty());
    EXPECT_FALSE(report->full_reload);
  }
  // Nothing it holds changed.
  EXPECT_EQ(gallery_->gallery_count(), 2);
  EXPECT_EQ(In("site")->Get("alice")->template_ids, ids);
  EXPECT_EQ(gallery_->template_count(), 2);
}

}  // namespace
}  // namespace veriface::testing
