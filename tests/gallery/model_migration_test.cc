// Moving a store to another model (core/gallery/model_migration.h) on both stores, SQLite and a real
// PostgreSQL server: passes that are interrupted and resume, a gallery that keeps serving and enrolling
// the old model meanwhile, the atomic switch, and templates without face crops. The embedding function
// here is a fixed function of the crop's bytes, so that every template's new value can be checked
// exactly; the real model runs in tests/server/migration_test.cc.

#include "core/gallery/model_migration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/gallery/gallery.h"
#include "core/gallery/postgres_gallery_store.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "tests/gallery/gallery_testing.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNewModel[] = "test-model-v2";
constexpr int64_t kNewDim = 64;
const ModelTarget kTarget{kNewModel, kNewDim};

std::vector<float> NewEmbedding(const std::string& jpeg) {
  std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>()(jpeg)));
  return RandomUnit(rng, kNewDim);
}

absl::StatusOr<std::vector<std::vector<float>>> EmbedCrops(const std::vector<FaceCrop>& crops) {
  std::vector<std::vector<float>> out;
  for (const FaceCrop& crop : crops) out.push_back(NewEmbedding(crop.jpeg));
  return out;
}

FaceCrop Crop(const std::string& name) {
  FaceCrop crop;
  crop.jpeg = "jpeg of " + name;
  for (size_t i = 0; i < crop.points.size(); ++i) crop.points[i] = static_cast<float>(i);
  crop.score = 0.99F;
  return crop;
}

class ModelMigrationTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      if (!PostgresInstalled()) GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/setup.sh installs it)";
      auto server = PostgresServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      server_ = std::move(*server);
    }
  }

  // A store of its own, as another process (the migration tool, a replica) opens it.
  std::unique_ptr<GalleryStore> OpenStore() {
    if (GetParam() == "sqlite") {
      auto store = SqliteGalleryStore::Open(dir_.File("gallery.db"));
      EXPECT_TRUE(store.ok()) << store.status();
      return store.ok() ? std::unique_ptr<GalleryStore>(*std::move(store)) : nullptr;
    }
    PostgresStoreOptions options;
    options.conninfo = server_->conninfo();
    options.password = server_->password();
    auto store = PostgresGalleryStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::unique_ptr<GalleryStore>(*std::move(store)) : nullptr;
  }

  absl::StatusOr<std::unique_ptr<Gallery>> OpenServing(const std::string& model = kModel, int64_t dim = kDim) {
    return Gallery::Open(OpenStore(), model, dim);
  }

  // Enrols `crops.size()` templates; an empty name means no crop is kept for that one.
  void Enroll(Gallery& g, const std::string& id, const std::vector<std::string>& crops,
              const std::string& request_id = "") {
    EnrollCommand command{"", id, {{"name", id}}, RandomUnits(rng_, static_cast<int>(crops.size())), request_id, {}};
    for (const std::string& name : crops) command.face_crops.push_back(name.empty() ? FaceCrop{} : Crop(name));
    auto out = g.Enroll(command);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < crops.size(); ++i) crop_of_[out->template_ids[i]] = crops[i];
  }

  // Every stored template holds the new model's value of its own crop.
  void ExpectAllReembedded(const StoreSnapshot& snapshot) {
    EXPECT_EQ(snapshot.model_id, kNewModel);
    EXPECT_EQ(snapshot.embedding_dim, kNewDim);
    for (const GalleryContents& g : snapshot.galleries) {
      for (const IdentityState& identity : g.identities) {
        for (const TemplateRecord& t : identity.templates) {
          EXPECT_EQ(t.model_id, kNewModel);
          EXPECT_EQ(t.embedding, NewEmbedding(Crop(crop_of_[t.template_id]).jpeg)) << t.template_id;
        }
      }
    }
  }

  TempDir dir_;
  std::unique_ptr<PostgresServer> server_;
  std::mt19937 rng_{7};
  std::map<std::string, std::string> crop_of_;  // template id -> crop name
};

TEST_P(ModelMigrationTest, AnInterruptedPassResumesAndTheSwitchMovesEveryTemplate) {
  auto serving = OpenServing();
  ASSERT_TRUE(serving.ok()) << serving.status();
  Gallery& g = **serving;
  for (int i = 0; i < 6; ++i) Enroll(g, "p" + std::to_string(i), {"p" + std::to_string(i) + "a"});
  Enroll(g, "twice", {"twice-a", "twice-b"});

  MigrationOptions options;
  options.batch_size = 3;
  options.max_batches = 1;
  {
    std::unique_ptr<GalleryStore> tool = OpenStore();
    const auto first = ReembedPass(*tool, kTarget, EmbedCrops, options);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->templates, 8);
    EXPECT_EQ(first->reembedded, 3);
    EXPECT_EQ(first->from_model, kModel);
  }  // the tool stops here, as if killed between batches

  // The old model keeps serving and enrolling; a delete takes its re-embedded values with it.
  Enroll(g, "late", {"late-a"});
  ASSERT_TRUE(g.Delete("", "p0", "").ok());
  std::unique_ptr<GalleryStore> tool = OpenStore();
  options.max_batches = 0;
  int reports = 0;
  options.on_progress = [&](const MigrationProgress&) { ++reports; };
  const auto rest = ReembedPass(*tool, kTarget, EmbedCrops, options);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->templates, 8);
  EXPECT_EQ(rest->reembedded, 8);
  EXPECT_GE(reports, 2);
  // Nothing is switched yet: a server of the old model still opens the store.
  EXPECT_TRUE(OpenServing().ok());

  Enroll(g, "straggler", {"straggler-a"});  // after the last pass: the switch embeds it
  const auto dropped = SwitchOver(*tool, kTarget, EmbedCrops, /*drop_without_crop=*/false);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 0);

  const auto after = OpenStore()->Load();
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectAllReembedded(*after);
  size_t templates = 0;
  for (const IdentityState& identity : after->galleries.front().identities) templates += identity.templates.size();
  EXPECT_EQ(templates, 9u);

  // The old model's server can no longer write, nor open the store again; the new model's can.
  std::mt19937 rng(1);
  const auto refused = g.Enroll(EnrollCommand{"", "too-late", {}, {RandomUnit(rng)}, "", {}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_EQ(OpenServing().status().code(), absl::StatusCode::kFailedPrecondition);
  if (GetParam() == "postgres") {
    // A replica following the store finds another model's templates and keeps what it serves.
    const auto sync = g.Sync();
    EXPECT_EQ(sync.status().code(), absl::StatusCode::kFailedPrecondition) << sync.status();
  }
  auto moved = OpenServing(kNewModel, kNewDim);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ((*moved)->identity_count(), 8);
  EXPECT_TRUE((*moved)->Enroll(EnrollCommand{"", "new", {}, {RandomUnit(rng, kNewDim)}, "", {}}).ok());

  // Done is done: another switch or pass to the same model is refused.
  EXPECT_EQ(SwitchOver(*tool, kTarget, EmbedCrops, false).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReembedPass(*tool, kTarget, EmbedCrops).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(ModelMigrationTest, TemplatesWithoutCropsAreNamedAndBlockTheSwitchUnlessDropped) {
  auto serving = OpenServing();
  ASSERT_TRUE(serving.ok()) << serving.status();
  Gallery& g = **serving;
  Enroll(g, "kept", {"kept-a"});
  Enroll(g, "bare", {"", ""}, "req-bare");
  Enroll(g, "mixed", {"mixed-a", ""});
  const auto bare = (*g.Find(""))->Get("bare");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->templates_without_face_crop, 2);
  EXPECT_EQ((*g.Find(""))->Get("kept")->templates_without_face_crop, 0);

  std::unique_ptr<GalleryStore> tool = OpenStore();
  const auto progress = ReembedPass(*tool, kTarget, EmbedCrops);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->reembedded, 2);
  EXPECT_EQ(progress->without_crop, 3);
  EXPECT_EQ(progress->identities_without_crop_count, 2);
  ASSERT_EQ(progress->identities_without_crop.size(), 2u);
  EXPECT_EQ(progress->identities_without_crop[0].identity_id, "bare");
  EXPECT_EQ(progress->identities_without_crop[0].templates_without_crop, 2);
  EXPECT_EQ(progress->identities_without_crop[1].identity_id, "mixed");

  const auto refused = SwitchOver(*tool, kTarget, EmbedCrops, /*drop_without_crop=*/false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("re-enrol"));
  EXPECT_TRUE(OpenServing().ok()) << "a refused switch changes nothing";

  const auto dropped = SwitchOver(*tool, kTarget, EmbedCrops, /*drop_without_crop=*/true);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 3);
  auto moved = OpenServing(kNewModel, kNewDim);
  ASSERT_TRUE(moved.ok()) << moved.status();
  const auto collection = *(*moved)->Find("");
  EXPECT_FALSE(collection->Get("bare").ok()) << "an identity left with no template is deleted";
  EXPECT_EQ(collection->Get("mixed")->template_ids.size(), 1u);
  EXPECT_EQ(collection->Get("kept")->template_ids.size(), 1u);
  const auto receipt = tool->FindReceipt("req-bare");
  ASSERT_TRUE(receipt.ok()) << receipt.status();
  EXPECT_FALSE(receipt->has_value()) << "the deleted identity's enrolment receipt goes with it";
  const auto after = OpenStore()->Load();
  ASSERT_TRUE(after.ok()) << after.status();
  ExpectAllReembedded(*after);
}

TEST_P(ModelMigrationTest, AnEmbedderOfTheWrongSizeCommitsNothing) {
  auto serving = OpenServing();
  ASSERT_TRUE(serving.ok()) << serving.status();
  Enroll(**serving, "alice", {"alice-a"});
  std::unique_ptr<GalleryStore> tool = OpenStore();
  const CropEmbedder wrong = [](const std::vector<FaceCrop>& crops) -> absl::StatusOr<std::vector<std::vector<float>>> {
    return std::vector<std::vector<float>>(crops.size(), std::vector<float>(kDim, 0.0F));
  };
  const auto pass = ReembedPass(*tool, kTarget, wrong);
  EXPECT_EQ(pass.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pass.status().message()), HasSubstr("re-embedding of template"));
  const auto progress = tool->Progress(kTarget, 10);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->reembedded, 0);
  EXPECT_EQ(SwitchOver(*tool, kTarget, wrong, false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(OpenServing().ok());
}

INSTANTIATE_TEST_SUITE_P(BothStores, ModelMigrationTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace veriface::testing
