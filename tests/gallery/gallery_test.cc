// Behaviour of the gallery and its default collection over a real SQLite file: enrol, identify, compare,
// delete, list, validation, limits, restart, model binding and concurrency. Named galleries and request
// ids have their own file (named_galleries_test.cc).

#include "core/gallery/gallery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class GalleryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gallery = OpenGallery(DbPath());
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    gallery_ = std::move(*gallery);
  }
  std::string DbPath() const { return dir_.File("gallery.db"); }
  void Reopen() {
    gallery_.reset();
    auto gallery = OpenGallery(DbPath());
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    gallery_ = std::move(*gallery);
  }
  // The default collection, held for the duration of the caller's full expression.
  std::shared_ptr<const Collection> Default() const { return CollectionOrEmpty(*gallery_); }
  absl::StatusOr<EnrollOutcome> Enroll(const std::string& id, const std::map<std::string, std::string>& metadata,
                                       const std::vector<std::vector<float>>& embeddings) {
    return gallery_->Enroll(EnrollCommand{"", id, metadata, embeddings, "", {}});
  }
  std::vector<std::string> MustEnroll(const std::string& id, const std::vector<std::vector<float>>& embeddings,
                                      const std::map<std::string, std::string>& metadata = {}) {
    auto out = Enroll(id, metadata, embeddings);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    EXPECT_FALSE(out->replayed);
    EXPECT_EQ(out->gallery, kDefaultGalleryName);
    return out->template_ids;
  }
  absl::Status Delete(const std::string& id) { return gallery_->Delete("", id).status(); }

  TempDir dir_;
  std::mt19937 rng_{1234};
  std::unique_ptr<Gallery> gallery_;
};

TEST_F(GalleryTest, EnrollThenIdentifyFindsTheIdentityWithItsBestTemplate) {
  auto alice1 = RandomUnit(rng_), alice2 = RandomUnit(rng_), bob = RandomUnit(rng_), carol = RandomUnit(rng_);
  auto alice_ids = MustEnroll("alice", {alice1, alice2});
  auto bob_ids = MustEnroll("bob", {bob});
  MustEnroll("carol", {carol});
  ASSERT_EQ(alice_ids.size(), 2u);
  EXPECT_NE(alice_ids[0], alice_ids[1]);
  EXPECT_EQ(gallery_->identity_count(), 3);
  EXPECT_EQ(gallery_->template_count(), 4);

  auto matches = Default()->Identify(alice2, 10, -1.0f);
  ASSERT_TRUE(matches.ok()) << matches.status();
  ASSERT_EQ(matches->size(), 3u);  // one entry per identity, not per template
  EXPECT_EQ((*matches)[0].identity_id, "alice");
  EXPECT_EQ((*matches)[0].best_template_id, alice_ids[1]);
  EXPECT_NEAR((*matches)[0].similarity, 1.0f, 1e-5);
  EXPECT_GE((*matches)[1].similarity, (*matches)[2].similarity);

  auto top1 = Default()->Identify(bob, 1, -1.0f);
  ASSERT_TRUE(top1.ok());
  ASSERT_EQ(top1->size(), 1u);
  EXPECT_EQ((*top1)[0].identity_id, "bob");
  EXPECT_EQ((*top1)[0].best_template_id, bob_ids[0]);

  // Random 128-D unit vectors are nearly orthogonal: only bob passes a 0.5 threshold.
  auto strict = Default()->Identify(bob, 10, 0.5f);
  ASSERT_TRUE(strict.ok());
  ASSERT_EQ(strict->size(), 1u);
  EXPECT_EQ((*strict)[0].identity_id, "bob");
}

TEST_F(GalleryTest, IdentifyAgreesWithBruteForce) {
  std::map<std::string, std::vector<std::pair<std::string, std::vector<float>>>> enrolled;
  std::uniform_int_distribution<int> per_identity(1, 5);
  for (int i = 0; i < 300; ++i) {
    std::vector<std::vector<float>> embeddings(per_identity(rng_));
    for (auto& e : embeddings) e = RandomUnit(rng_);
    const std::string id = "person-" + std::to_string(i);
    auto ids = MustEnroll(id, embeddings);
    for (size_t t = 0; t < ids.size(); ++t) enrolled[id].push_back({ids[t], embeddings[t]});
  }
  for (int q = 0; q < 20; ++q) {
    const auto query = RandomUnit(rng_);
    std::vector<std::pair<double, std::string>> expected;
    std::map<std::string, std::string> best_template;
    for (const auto& [id, templates] : enrolled) {
      double best = -2;
      for (const auto& [tid, e] : templates) {
        if (Dot(query, e) > best) {
          best = Dot(query, e);
          best_template[id] = tid;
        }
      }
      expected.push_back({best, id});
    }
    std::sort(expected.rbegin(), expected.rend());
    auto matches = Default()->Identify(query, 15, -1.0f);
    ASSERT_TRUE(matches.ok());
    ASSERT_EQ(matches->size(), 15u);
    for (size_t i = 0; i < 15; ++i) {
      EXPECT_EQ((*matches)[i].identity_id, expected[i].second) << "rank " << i;
      EXPECT_NEAR((*matches)[i].similarity, expected[i].first, 1e-5);
      EXPECT_EQ((*matches)[i].best_template_id, best_template[expected[i].second]);
    }
  }
}

TEST_F(GalleryTest, CompareUsesTheBestTemplateOfThatIdentity) {
  auto a = RandomUnit(rng_), b = RandomUnit(rng_), other = RandomUnit(rng_);
  auto ids = MustEnroll("alice", {a, b});
  MustEnroll("other", {other});
  auto match = Default()->Compare(b, "alice");
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_EQ(match->identity_id, "alice");
  EXPECT_EQ(match->best_template_id, ids[1]);
  EXPECT_NEAR(match->similarity, 1.0f, 1e-5);
  auto far = Default()->Compare(other, "alice");
  ASSERT_TRUE(far.ok());
  EXPECT_NEAR(far->similarity, std::max(Dot(other, a), Dot(other, b)), 1e-5);

  auto missing = Default()->Compare(a, "nobody");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no identity \"nobody\" in gallery \"default\"");
}

TEST_F(GalleryTest, CompareIdentitiesGivesTheBestPairOfTemplates) {
  const std::vector<std::vector<float>> a = {RandomUnit(rng_), RandomUnit(rng_)};
  const std::vector<std::vector<float>> b = {RandomUnit(rng_), RandomUnit(rng_)};
  auto a_ids = MustEnroll("alice", a);
  auto b_ids = MustEnroll("bob", b);
  const auto gallery = Default();
  auto pair = gallery->CompareIdentities("alice", *gallery, "bob");
  ASSERT_TRUE(pair.ok()) << pair.status();
  // The brute-force best of the four pairs.
  double best = -2;
  std::string best_a, best_b;
  for (size_t i = 0; i < 2; ++i) {
    for (size_t j = 0; j < 2; ++j) {
      const double d = Dot(a[i], b[j]);
      if (d > best) {
        best = d;
        best_a = a_ids[i];
        best_b = b_ids[j];
      }
    }
  }
  EXPECT_EQ(pair->template_a, best_a);
  EXPECT_EQ(pair->template_b, best_b);
  EXPECT_NEAR(pair->similarity, best, 1e-5);
  // Symmetric, with the sides swapped.
  auto swapped = gallery->CompareIdentities("bob", *gallery, "alice");
  ASSERT_TRUE(swapped.ok());
  EXPECT_EQ(swapped->template_a, best_b);
  EXPECT_EQ(swapped->template_b, best_a);
  EXPECT_NEAR(swapped->similarity, pair->similarity, 1e-6);
  // An identity against itself: its templates' self-similarity.
  auto self = gallery->CompareIdentities("alice", *gallery, "alice");
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(self->similarity, 1.0f, 1e-5);
  EXPECT_EQ(self->template_a, self->template_b);
  // Whichever side is unknown is named.
  auto no_a = gallery->CompareIdentities("nobody", *gallery, "bob");
  EXPECT_EQ(no_a.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_a.status().message()), HasSubstr("\"nobody\""));
  auto no_b = gallery->CompareIdentities("alice", *gallery, "nobody-else");
  EXPECT_EQ(no_b.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_b.status().message()), HasSubstr("\"nobody-else\""));
}

TEST_F(GalleryTest, EmptyGalleryIdentifiesNobody) {
  auto matches = Default()->Identify(RandomUnit(rng_), 5, -1.0f);
  ASSERT_TRUE(matches.ok());
  EXPECT_TRUE(matches->empty());
}

TEST_F(GalleryTest, EnrollingAgainAddsTemplatesAndMergesMetadata) {
  MustEnroll("alice", {RandomUnit(rng_)}, {{"name", "Alice"}, {"team", "red"}});
  MustEnroll("alice", {RandomUnit(rng_), RandomUnit(rng_)}, {{"team", "blue"}, {"city", "Oslo"}});
  auto info = Default()->Get("alice");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->template_ids.size(), 3u);
  EXPECT_EQ(info->record.metadata,
            (std::map<std::string, std::string>{{"name", "Alice"}, {"team", "blue"}, {"city", "Oslo"}}));
  EXPECT_LE(info->record.created_unix_ms, info->record.updated_unix_ms);
  EXPECT_GT(info->record.created_unix_ms, 0);
  EXPECT_EQ(gallery_->identity_count(), 1);
}

TEST_F(GalleryTest, NearlyUnitEmbeddingsAreRenormalisedOthersRefused) {
  auto e = RandomUnit(rng_);
  for (float& x : e) x *= 1.0004f;  // within the default tolerance of 1e-3
  auto ids = MustEnroll("alice", {e});
  auto match = Default()->Compare(RandomUnit(rng_), "alice");
  ASSERT_TRUE(match.ok());
  auto self = Default()->Compare(e, "alice");
  ASSERT_TRUE(self.ok());
  EXPECT_NEAR(self->similarity, 1.0f, 1e-6);

  for (float& x : e) x *= 2.0f;
  auto refused = Enroll("bob", {}, {e});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("L2 norm 2.00"));
}

TEST_F(GalleryTest, BadInputIsRefusedWithReadableMessages) {
  const auto good = RandomUnit(rng_);
  struct Case {
    std::string id;
    std::map<std::string, std::string> metadata;
    std::vector<std::vector<float>> embeddings;
    std::string message;
  };
  std::vector<float> nan_embedding = good;
  nan_embedding[3] = std::nanf("");
  std::map<std::string, std::string> many;
  for (int i = 0; i < 40; ++i) many["k" + std::to_string(i)] = "v";
  const std::vector<Case> cases = {
      {"", {}, {good}, "identity id is empty"},
      {std::string(300, 'x'), {}, {good}, "300 bytes long; the limit is 256"},
      {"tab\there", {}, {good}, "control character 0x09 at byte 3"},
      {"bad\xff utf8", {}, {good}, "not valid UTF-8 at byte 3"},
      {"alice", {}, {}, "has no embeddings"},
      {"alice", {}, {std::vector<float>(64, 0.125f)}, "has 64 values; model 'test-model-v1' makes 128-D"},
      {"alice", {}, {nan_embedding}, "non-finite value (nan) at index 3"},
      {"alice", {}, {std::vector<float>(kDim, 0.0f)}, "L2 norm 0"},
      {"alice", {{"", "v"}}, {good}, "metadata key is empty"},
      {"alice", {{"k", std::string("a\0b", 3)}}, {good}, "control character 0x00"},
      {"alice", many, {good}, "40 metadata entries; the limit is 32"},
      {"alice", {{"k", std::string(5000, 'v')}}, {good}, "5001 bytes of metadata; the limit is 4096"},
  };
  for (const Case& c : cases) {
    auto result = Enroll(c.id, c.metadata, c.embeddings);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.message));
  }
  EXPECT_EQ(gallery_->identity_count(), 0);
  EXPECT_EQ(gallery_->template_count(), 0);

  EXPECT_EQ(Default()->Identify(good, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Default()->Identify(std::vector<float>(3, 0.5f), 1, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Default()->Identify(good, 1, std::nanf("")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Default()->Compare(nan_embedding, "alice").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GalleryTest, LimitsAnswerResourceExhaustedAndChangeNothing) {
  GalleryLimits limits;
  limits.max_templates = 5;
  limits.max_templates_per_identity = 3;
  gallery_.reset();
  auto gallery = OpenGallery(DbPath(), kModel, kDim, limits);
  ASSERT_TRUE(gallery.ok());
  gallery_ = std::move(*gallery);
  MustEnroll("a", {RandomUnit(rng_), RandomUnit(rng_)});
  auto over = Enroll("a", {}, {RandomUnit(rng_), RandomUnit(rng_)});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("limit of 3 per identity"));
  MustEnroll("b", {RandomUnit(rng_), RandomUnit(rng_), RandomUnit(rng_)});
  auto full = Enroll("c", {}, {RandomUnit(rng_)});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.status().message()), HasSubstr("holds 5 templates"));
  EXPECT_EQ(gallery_->template_count(), 5);
  EXPECT_EQ(Default()->Get("c").status().code(), absl::StatusCode::kNotFound);
  Reopen();
  EXPECT_EQ(gallery_->template_count(), 5);
}

TEST_F(GalleryTest, DeleteRemovesTheIdentityAndCompactsTheMatrix) {
  // Random enrolments and deletions against a plain model of what should be there; after each step
  // every remaining template must still be found as itself (the compaction moved rows correctly).
  std::map<std::string, std::map<std::string, std::vector<float>>> model;
  std::uniform_int_distribution<int> coin(0, 2), count(1, 4);
  for (int step = 0; step < 120; ++step) {
    if (coin(rng_) == 0 && !model.empty()) {
      auto victim = model.begin();
      std::advance(victim, std::uniform_int_distribution<size_t>(0, model.size() - 1)(rng_));
      ASSERT_TRUE(Delete(victim->first).ok());
      EXPECT_EQ(Delete(victim->first).code(), absl::StatusCode::kNotFound);
      model.erase(victim);
    } else {
      const std::string id = "id-" + std::to_string(std::uniform_int_distribution<int>(0, 40)(rng_));
      if (model.count(id) && model[id].size() > 990) continue;
      std::vector<std::vector<float>> embeddings(count(rng_));
      for (auto& e : embeddings) e = RandomUnit(rng_);
      auto ids = MustEnroll(id, embeddings);
      for (size_t i = 0; i < ids.size(); ++i) model[id][ids[i]] = embeddings[i];
    }
  }
  if (model.size() > 1) {
    ASSERT_TRUE(Delete(model.begin()->first).ok());
    model.erase(model.begin());
  }
  for (int pass = 0; pass < 2; ++pass) {
    int64_t templates = 0;
    for (const auto& [id, tmpl] : model) {
      auto info = Default()->Get(id);
      ASSERT_TRUE(info.ok()) << id;
      EXPECT_EQ(info->template_ids.size(), tmpl.size());
      for (const auto& [tid, e] : tmpl) {
        ++templates;
        auto top = Default()->Identify(e, 1, -1.0f);
        ASSERT_TRUE(top.ok());
        ASSERT_EQ(top->size(), 1u);
        EXPECT_EQ((*top)[0].identity_id, id);
        EXPECT_EQ((*top)[0].best_template_id, tid);
        EXPECT_NEAR((*top)[0].similarity, 1.0f, 1e-5);
      }
    }
    EXPECT_EQ(gallery_->identity_count(), static_cast<int64_t>(model.size()));
    EXPECT_EQ(gallery_->template_count(), templates);
    Reopen();  // the second pass checks what was loaded back from the file
  }
}

TEST_F(GalleryTest, ListWalksEveryIdentityOnceInOrder) {
  std::set<std::string> expected;
  for (int i = 0; i < 53; ++i) {
    const std::string id = "user-" + std::to_string(1000 + i * 7 % 53);
    MustEnroll(id, {RandomUnit(rng_)}, {{"n", std::to_string(i)}});
    expected.insert(id);
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = Default()->List(10, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->identities.size(), 10u);
    for (const auto& info : page->identities) {
      seen.push_back(info.record.identity_id);
      EXPECT_EQ(info.template_ids.size(), 1u);
      EXPECT_EQ(info.record.metadata.count("n"), 1u);
    }
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 6);
  EXPECT_EQ(seen, std::vector<std::string>(expected.begin(), expected.end()));

  auto all = Default()->List(0, "");  // default page size
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->identities.size(), 53u);
  EXPECT_TRUE(all->next_page_token.empty());
}

TEST_F(GalleryTest, ListPaginationIsStableUnderConcurrentChanges) {
  for (int i = 0; i < 30; ++i) MustEnroll("m" + std::to_string(100 + i), {RandomUnit(rng_)});
  auto first = Default()->List(10, "");
  ASSERT_TRUE(first.ok());
  // Between pages: delete one already returned, one not yet returned, and add before and after.
  ASSERT_TRUE(Delete("m100").ok());
  ASSERT_TRUE(Delete("m125").ok());
  MustEnroll("m000", {RandomUnit(rng_)});
  MustEnroll("m999", {RandomUnit(rng_)});
  std::vector<std::string> rest;
  std::string token = first->next_page_token;
  while (!token.empty()) {
    auto page = Default()->List(10, token);
    ASSERT_TRUE(page.ok());
    for (const auto& info : page->identities) rest.push_back(info.record.identity_id);
    token = page->next_page_token;
  }
  std::vector<std::string> expected;
  for (int i = 10; i < 30; ++i) {
    if (i != 25) expected.push_back("m" + std::to_string(100 + i));
  }
  expected.push_back("m999");
  EXPECT_EQ(rest, expected);
}

TEST_F(GalleryTest, BadPageTokenIsInvalidArgument) {
  MustEnroll("a", {RandomUnit(rng_)});
  for (const std::string token : {"garbage!!", "bm90LWEtdG9rZW4", "%%%"}) {
    auto page = Default()->List(10, token);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_THAT(std::string(page.status().message()), HasSubstr("page token"));
  }
}

TEST_F(GalleryTest, RestartKeepsEverything) {
  auto a = RandomUnit(rng_), b = RandomUnit(rng_), c = RandomUnit(rng_);
  auto a_ids = MustEnroll("alice", {a, b}, {{"name", "Alice Liddell"}});
  MustEnroll("bob", {c});
  MustEnroll("gone", {RandomUnit(rng_)});
  ASSERT_TRUE(Delete("gone").ok());
  auto before = Default()->Get("alice");
  ASSERT_TRUE(before.ok());

  Reopen();
  EXPECT_EQ(gallery_->identity_count(), 2);
  EXPECT_EQ(gallery_->template_count(), 3);
  auto after = Default()->Get("alice");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->template_ids, a_ids);
  EXPECT_EQ(after->record.metadata, before->record.metadata);
  EXPECT_EQ(after->record.created_unix_ms, before->record.created_unix_ms);
  EXPECT_EQ(after->record.updated_unix_ms, before->record.updated_unix_ms);
  EXPECT_EQ(Default()->Get("gone").status().code(), absl::StatusCode::kNotFound);
  auto match = Default()->Identify(b, 1, 0.9f);
  ASSERT_TRUE(match.ok());
  ASSERT_EQ(match->size(), 1u);
  EXPECT_EQ((*match)[0].best_template_id, a_ids[1]);
  EXPECT_NEAR((*match)[0].similarity, 1.0f, 1e-6);  // the embedding's bytes came back unchanged
}

TEST_F(GalleryTest, AnotherModelIsRefusedNamingBoth) {
  MustEnroll("alice", {RandomUnit(rng_)});
  gallery_.reset();
  auto other = OpenGallery(DbPath(), "other-model-v2");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("'test-model-v1'"));
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("'other-model-v2'"));
  auto other_dim = OpenGallery(DbPath(), kModel, 512);
  EXPECT_EQ(other_dim.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other_dim.status().message()), HasSubstr("512-D"));
  // The refusal changed nothing: the right model still opens it.
  Reopen();
  EXPECT_EQ(gallery_->template_count(), 1);
}

TEST_F(GalleryTest, AnEmptiedGalleryCanBeReboundToANewModel) {
  MustEnroll("alice", {RandomUnit(rng_)});
  ASSERT_TRUE(Delete("alice").ok());
  gallery_.reset();
  auto rebound = OpenGallery(DbPath(), "new-model", 64);
  ASSERT_TRUE(rebound.ok()) << rebound.status();
  EXPECT_EQ((*rebound)->model_id(), "new-model");
  ASSERT_TRUE((*rebound)->Enroll(EnrollCommand{"", "bob", {}, {RandomUnit(rng_, 64)}, "", {}}).ok());
  rebound->reset();
  EXPECT_EQ(OpenGallery(DbPath()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(GalleryTest, AFailedCommitLeavesMemoryUnchanged) {
  MustEnroll("alice", {RandomUnit(rng_)});
  gallery_.reset();
  SqliteStoreOptions options;
  options.busy_timeout_ms = 50;
  auto store = SqliteGalleryStore::Open(DbPath(), options);
  ASSERT_TRUE(store.ok());
  auto gallery = Gallery::Open(std::move(*store), kModel, kDim);
  ASSERT_TRUE(gallery.ok());
  gallery_ = std::move(*gallery);

  // A second connection holds the write lock, so the gallery's commits fail for real.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto blocked = Enroll("bob", {}, {RandomUnit(rng_)});
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable) << blocked.status();
  EXPECT_EQ(Delete("alice").code(), absl::StatusCode::kUnavailable);
  // A write that carried a request id fails the same way and leaves no receipt behind.
  auto blocked_with_id = gallery_->Enroll(EnrollCommand{"", "carol", {}, {RandomUnit(rng_)}, "req-blocked", {}});
  EXPECT_EQ(blocked_with_id.status().code(), absl::StatusCode::kUnavailable) << blocked_with_id.status();
  EXPECT_EQ(gallery_->Delete("", "alice", "del-blocked").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(gallery_->CreateGallery("blocked").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(gallery_->Find("blocked").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Default()->Get("bob").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Default()->Get("carol").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Default()->Get("alice").ok());
  EXPECT_EQ(gallery_->template_count(), 1);
  EXPECT_EQ(gallery_->gallery_count(), 1);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  MustEnroll("bob", {RandomUnit(rng_)});
  // The retries do the work now: nothing of the failed attempts is replayed.
  auto retried = gallery_->Enroll(EnrollCommand{"", "carol", {}, {RandomUnit(rng_)}, "req-blocked", {}});
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_FALSE(retried->replayed);
  auto deleted = gallery_->Delete("", "alice", "del-blocked");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(deleted->replayed);
  EXPECT_EQ(deleted->templates_deleted, 1);
  Reopen();
  EXPECT_EQ(gallery_->identity_count(), 2);
  EXPECT_TRUE(Default()->Get("bob").ok());
  EXPECT_TRUE(Default()->Get("carol").ok());
}

TEST_F(GalleryTest, ReadersAndWritersRunConcurrently) {
  std::vector<std::vector<float>> stable;
  for (int i = 0; i < 20; ++i) {
    stable.push_back(RandomUnit(rng_));
    MustEnroll("stable-" + std::to_string(i), {stable.back()});
  }
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, wrong{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 local(r);
      while (!stop.load()) {
        const int i = std::uniform_int_distribution<int>(0, 19)(local);
        auto top = Default()->Identify(stable[i], 1, 0.5f);
        if (!top.ok() || top->size() != 1 || (*top)[0].identity_id != "stable-" + std::to_string(i)) ++wrong;
        auto page = Default()->List(7, "");
        if (!page.ok()) ++wrong;
        ++reads;
      }
    });
  }
  std::thread writer([&] {
    std::mt19937 local(99);
    for (int i = 0; i < 60; ++i) {
      const std::string id = "churn-" + std::to_string(i % 7);
      if (i % 3 == 2) {
        (void)Delete(id);
      } else if (!Enroll(id, {{"i", std::to_string(i)}}, {RandomUnit(local)}).ok()) {
        ++wrong;
      }
    }
  });
  writer.join();
  while (reads.load() < 50) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace veriface::testing
