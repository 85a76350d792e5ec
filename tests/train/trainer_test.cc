// The trainer on a handful of real LFW people: the face cache, checkpoint + resume continuing exactly
// as an uninterrupted run, refusals, and small end-to-end runs whose bundles FaceModel::Load serves
// with the same embeddings the trainer computed.

#include "trainer/training/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/align/aligner.h"
#include "core/common/status_macros.h"
#include "core/image/decode.h"
#include "tests/bundle/pinned_mobilefacenet.h"
#include "tests/testing/test_env.h"
#include "trainer/calibration/calibration.h"
#include "trainer/training/face_cache.h"
#include "trainer/training/fold_protocol.h"

namespace veriface {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kTrainPeople[] = {"Colin_Powell",      "Tony_Blair",   "Donald_Rumsfeld",
                                    "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez"};
const char* const kSinglePeople[] = {"Jean_Chretien", "John_Ashcroft", "Junichiro_Koizumi"};
const char* const kValPeople[] = {"Serena_Williams", "Jacques_Chirac", "Vladimir_Putin"};

std::string LfwImage(const std::string& person, int i) {
  return absl::StrCat(testing::LfwDir(), "/", person, "/", person, "_", std::string(4 - std::to_string(i).size(), '0'),
                      i, ".jpg");
}

// A small folder in LFW layout made of links to the shared images (nothing copied), a validation pairs
// file over three people who also have images in the folder (so they must be held out), and a cache
// folder shared by every test of this binary.
struct SmallLfw {
  testing::TempDir dir;
  std::string root, val_pairs, cache;

  SmallLfw() {
    root = dir.File("lfw");
    // ctest runs every test in its own process: a cache in the build folder lets them share the faces
    // (entries are keyed by content and written atomically, so sharing is safe).
    const char* build = std::getenv("VERIFACE_BINARY_DIR");
    cache = build != nullptr ? std::string(build) + "/tests/train/face-cache" : dir.File("cache");
    const auto link = [&](const std::string& person, int count) {
      fs::create_directories(root + "/" + person);
      for (int i = 1; i <= count; ++i) {
        const std::string src = LfwImage(person, i);
        fs::create_symlink(src, root + "/" + person + "/" + fs::path(src).filename().string());
      }
    };
    for (const char* p : kTrainPeople) link(p, 5);
    for (const char* p : kSinglePeople) link(p, 1);
    for (const char* p : kValPeople) link(p, 3);
    val_pairs = dir.File("pairs_val.txt");
    std::ofstream(val_pairs) << "4\n"
                             << "Serena_Williams\t1\t2\nJacques_Chirac\t1\t2\nVladimir_Putin\t1\t3\n"
                             << "Serena_Williams\t2\t3\n"
                             << "Serena_Williams\t1\tJacques_Chirac\t1\nJacques_Chirac\t2\tVladimir_Putin\t2\n"
                             << "Vladimir_Putin\t1\tSerena_Williams\t3\nJacques_Chirac\t3\tSerena_Williams\t2\n";
  }
};

SmallLfw& Data() {
  static SmallLfw data;  // made once per test binary, removed at exit
  return data;
}

// Plain chips as faces of one view each, as FaceModel::Embed takes them.
std::vector<FaceViews> AsFaces(const std::vector<cv::Mat>& chips) { return {chips.begin(), chips.end()}; }

// How the server embeds `image` with `model`: the central face's landmarks (as the trainer's cache finds
// them), the bundle's own cut (every network's chips), Embed. Fails the test when the face is not found.
absl::StatusOr<torch::Tensor> ServedEmbedding(const std::shared_ptr<const FaceModel>& model, const std::string& image) {
  FaceCache cache(model, FaceCacheOptions{});
  VF_ASSIGN_OR_RETURN(const auto faces, cache.Faces({image}));
  EXPECT_TRUE(faces[0].found) << image;
  VF_ASSIGN_OR_RETURN(const cv::Mat rgb, LoadImageFile(image));
  FaceDetection face;
  face.landmarks = faces[0].landmarks;
  return model->Embed({model->Cut(rgb, face)});
}

// The thresholds and record that veriface-train writes into its bundles.
absl::Status CalibrateInto(const VerificationScores& scores, const std::string& set, ModelSpec* spec) {
  return ApplyCalibration(Calibrate(scores, {"veriface-train", set, Trainer::kTestTime}), "", spec);
}

TrainerConfig BaseConfig(const std::string& work_dir) {
  TrainerConfig c;
  c.data_dir = Data().root;
  c.val_pairs = Data().val_pairs;
  c.source_bundle = testing::DefaultModelDir();
  c.cache_dir = Data().cache;
  c.work_dir = work_dir;
  c.device = "cpu";
  c.threads = 2;
  c.loader_threads = 2;
  c.sampler.people_per_batch = 4;
  c.sampler.images_per_person = 3;
  c.sampler.extra_negatives = 2;
  c.sampler.batches_per_epoch = 3;
  c.epochs = 2;
  c.warmup_epochs = 0.5;
  return c;
}

// A tiny MobileNetV2 trained from scratch on augmented chips: the image path.
TrainerConfig ImageConfig(const std::string& work_dir) {
  TrainerConfig c = BaseConfig(work_dir);
  c.backbone = "mobilenetv2";
  c.backbone_params = {{"input_size", 64}, {"width", 0.25}, {"last_channels", 64}};
  c.freeze_backbone = false;
  c.head_params = {{"output_dim", 32}};
  return c;
}

void ExpectSameWeights(const torch::nn::Module& a, const torch::nn::Module& b) {
  const auto pa = a.named_parameters();
  const auto pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  const auto ba = a.named_buffers();
  const auto bb = b.named_buffers();
  for (const auto& x : ba) EXPECT_TRUE(torch::equal(x.value(), bb[x.key()])) << x.key();
}

TEST(FaceCacheTest, SecondPassReadsEverythingFromDiskAndKeysByContent) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  testing::TempDir dir;
  FaceCacheOptions o;
  o.dir = dir.path();
  const std::vector<std::string> paths = {LfwImage("Tony_Blair", 1), LfwImage("Colin_Powell", 2)};
  FaceCache first(model, o);
  const auto faces = first.Faces(paths);
  ASSERT_TRUE(faces.ok()) << faces.status();
  ASSERT_TRUE((*faces)[0].found && (*faces)[1].found);
  const auto chips = first.Chips(paths, *faces, 112);
  ASSERT_TRUE(chips.ok()) << chips.status();
  EXPECT_EQ(first.faces_computed(), 2);
  EXPECT_EQ(first.chips_computed(), 2);

  // A second cache object on the same folder, with one file seen under another name: all hits.
  const std::string renamed = dir.File("renamed.jpg");
  fs::create_symlink(paths[0], renamed);
  FaceCache second(model, o);
  const std::vector<std::string> again = {renamed, paths[1]};
  const auto faces2 = second.Faces(again);
  ASSERT_TRUE(faces2.ok());
  const auto chips2 = second.Chips(again, *faces2, 112);
  ASSERT_TRUE(chips2.ok());
  EXPECT_EQ(second.faces_computed(), 0);
  EXPECT_EQ(second.chips_computed(), 0);
  EXPECT_EQ(cv::norm((*chips)[0], (*chips2)[0], cv::NORM_INF), 0.0);
  // The cached chip is the pipeline's own: detect, central face, align.
  const auto rgb = LoadImageFile(paths[1]);
  ASSERT_TRUE(rgb.ok());
  const auto detected = model->Detect(*rgb, model->spec().detector_defaults);
  ASSERT_TRUE(detected.ok());
  const int k = SelectFace(*detected, FaceSelection::kCentral, rgb->cols, rgb->rows);
  ASSERT_GE(k, 0);
  EXPECT_EQ(
      cv::norm(AlignFace(*rgb, (*detected)[static_cast<size_t>(k)].landmarks, 112).chip, (*chips2)[1], cv::NORM_INF),
      0.0);
}

TEST(FaceCacheTest, UnreadableImageIsAnErrorNamingTheFile) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  testing::TempDir dir;
  std::ofstream(dir.File("broken.jpg")) << "not a jpeg";
  FaceCache cache(model, FaceCacheOptions{});
  const auto faces = cache.Faces({dir.File("broken.jpg")});
  ASSERT_FALSE(faces.ok());
  EXPECT_NE(std::string(faces.status().message()).find("broken.jpg"), std::string::npos) << faces.status();
}

TEST(TrainerTest, ResumeContinuesExactlyAsAnUninterruptedRun) {
  testing::TempDir work;
  // Uninterrupted: two epochs.
  auto straight = Trainer::Create(ImageConfig(work.File("straight")));
  ASSERT_TRUE(straight.ok()) << straight.status();
  const auto s1 = (*straight)->Run();
  ASSERT_TRUE(s1.ok()) << s1.status();
  ASSERT_TRUE(s1->finished);
  ASSERT_EQ(s1->history.size(), 2u);
  EXPECT_EQ(s1->held_out_people, 3) << "the validation people are in the folder but must not train";
  EXPECT_GT(s1->history[0].steps, 0);
  EXPECT_TRUE(s1->history[0].validated);

  // Interrupted after one epoch, then resumed by a fresh trainer.
  TrainerConfig first = ImageConfig(work.File("resumed"));
  first.stop_after = 1;
  auto part = Trainer::Create(first);
  ASSERT_TRUE(part.ok());
  const auto s2 = (*part)->Run();
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_FALSE(s2->finished);
  EXPECT_EQ(s2->history.size(), 1u);

  TrainerConfig second = ImageConfig(work.File("resumed"));
  second.resume = true;
  auto rest = Trainer::Create(second);
  ASSERT_TRUE(rest.ok());
  const auto s3 = (*rest)->Run();
  ASSERT_TRUE(s3.ok()) << s3.status();
  ASSERT_TRUE(s3->finished);
  ASSERT_EQ(s3->history.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(s3->history[e].loss, s1->history[e].loss) << "epoch " << e + 1;
    EXPECT_EQ(s3->history[e].val_accuracy, s1->history[e].val_accuracy) << "epoch " << e + 1;
  }
  EXPECT_EQ(s3->best_epoch, s1->best_epoch);
  ExpectSameWeights(*(*rest)->backbone(), *(*straight)->backbone());
  ExpectSameWeights(*(*rest)->head(), *(*straight)->head());
  EXPECT_TRUE(fs::exists(work.File("resumed/log.csv")));
  EXPECT_TRUE(fs::exists(work.File("resumed/training.png")));
  EXPECT_TRUE(fs::exists(work.File("resumed/validation.png")));

  // The bundle of the from-scratch network loads and embeds as the trainer does.
  const std::string bundle = work.File("bundle");
  const auto scores = (*rest)->ScorePairs(*ReadPairsFile(Data().val_pairs));
  ASSERT_TRUE(scores.ok()) << scores.status();
  ModelSpec spec;
  ASSERT_TRUE(CalibrateInto(*scores, "validation pairs", &spec).ok());
  const auto written = (*rest)->WriteBundle(bundle, spec);
  ASSERT_TRUE(written.ok()) << written.status();
  const auto loaded = FaceModel::Load(bundle, torch::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->spec().backbone.arch, "mobilenetv2");
  EXPECT_EQ((*loaded)->chip_size(), 64);
  EXPECT_EQ((*loaded)->spec().embedding_dim, 32);
}

TEST(TrainerTest, RefusesToOverwriteOrToResumeWithOtherSettings) {
  testing::TempDir work;
  TrainerConfig c = BaseConfig(work.File("run"));
  c.epochs = 1;
  c.warmup_epochs = 0;
  c.sampler.batches_per_epoch = 1;
  c.feature_views = 2;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE((*t)->Run().ok());

  auto again = Trainer::Create(c);
  ASSERT_TRUE(again.ok());
  const auto overwrite = (*again)->Run();
  EXPECT_EQ(overwrite.status().code(), absl::StatusCode::kFailedPrecondition) << overwrite.status();

  c.resume = true;
  c.lr = 0.5;
  auto other = Trainer::Create(c);
  ASSERT_TRUE(other.ok());
  const auto mismatch = (*other)->Run();
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition) << mismatch.status();
}

TEST(TrainerTest, BadConfigurationsAreReadableErrors) {
  testing::TempDir work;
  TrainerConfig c = BaseConfig(work.path());
  c.backbone = "vgg19";  // with freeze_backbone still true
  EXPECT_FALSE(Trainer::Create(c).ok());
  c = BaseConfig(work.path());
  c.optimizer = "lbfgs";
  EXPECT_FALSE(Trainer::Create(c).ok());
  c = BaseConfig(work.path());
  c.source_bundle = work.File("nowhere");
  EXPECT_FALSE(Trainer::Create(c).ok());
  c = BaseConfig(work.path());
  c.head = "identity";  // nothing to train
  EXPECT_FALSE(Trainer::Create(c).ok());
  c = BaseConfig(work.path());
  c.epochs = 0;  // only a closed-form head may skip training
  EXPECT_FALSE(Trainer::Create(c).ok());
  c.head_init = "pca";
  EXPECT_FALSE(Trainer::Create(c).ok());
  c = ImageConfig(work.path());
  c.head_init = "whiten";  // needs the frozen features
  EXPECT_FALSE(Trainer::Create(c).ok());
}

// head_init "whiten" with no epoch: the head is the closed-form map fitted on the training people's
// test-time features, it travels in the bundle like any trained head, and the server embeds with it.
TEST(TrainerTest, WhitenedHeadWithoutEpochsIsTheClosedFormMapAndServes) {
  testing::TempDir work;
  TrainerConfig c = BaseConfig(work.File("run"));
  c.head_init = "whiten";
  c.whitening.shrinkage = 0.5;  // 26 images of 6 people cannot shape a 128-D covariance alone
  c.epochs = 0;
  c.warmup_epochs = 0;
  c.feature_views = 4;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto summary = (*t)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->finished);
  EXPECT_TRUE(summary->history.empty());

  // The training people's embeddings before normalisation are centred: their mean is far shorter than
  // the pass-through descriptors' mean direction.
  std::vector<std::string> images;
  for (const char* person : {"Colin_Powell", "Tony_Blair", "Donald_Rumsfeld"}) {
    for (int i = 1; i <= 5; ++i) images.push_back(LfwImage(person, i));
  }
  const auto ours = (*t)->EmbedImages(images);
  ASSERT_TRUE(ours.ok()) << ours.status();
  const auto* source = testing::DefaultModel().get();
  FaceCache cache(testing::DefaultModel(), FaceCacheOptions{});
  const auto faces = cache.Faces(images);
  ASSERT_TRUE(faces.ok());
  const auto chips = cache.Chips(images, *faces, source->chip_size());
  ASSERT_TRUE(chips.ok());
  const auto raw = source->Embed(AsFaces(*chips));
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_LT(ours->mean(0).norm().item<double>(), 0.7 * raw->mean(0).norm().item<double>());

  ModelSpec spec;
  spec.accuracy = {{"note", "test run"}};
  const auto pairs = ReadPairsFile(Data().val_pairs);
  ASSERT_TRUE(pairs.ok());
  const auto scores = (*t)->ScorePairs(*pairs);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_TRUE(CalibrateInto(*scores, "8 test pairs", &spec).ok());
  const std::string bundle = work.File("bundle");
  ASSERT_TRUE((*t)->WriteBundle(bundle, spec).ok());
  const auto model = FaceModel::Load(bundle, torch::kCPU);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->spec().provenance["training"]["config"]["head_init"], "whiten");
  const auto served = (*model)->Embed(AsFaces(*chips));
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_LT((*served - *ours).abs().max().item<double>(), 1e-4);
}

// The product path: a head over the frozen pretrained descriptor, trained over cached features; its
// bundle loads with FaceModel::Load and embeds exactly as the trainer does.
TEST(TrainerTest, FrozenBackboneHeadEndToEndWritesAServableBundle) {
  testing::TempDir work;
  TrainerConfig c = BaseConfig(work.File("run"));
  c.head_params = {{"residual", true}};
  c.feature_views = 4;
  c.sampler.batches_per_epoch = 4;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto summary = (*t)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->train_people, 9);  // 6 with five images + 3 single-image negatives
  EXPECT_EQ(summary->anchor_people, 6);
  EXPECT_EQ(summary->val_pairs, 8);

  const auto pairs = ReadPairsFile(Data().val_pairs);
  ASSERT_TRUE(pairs.ok());
  const auto scores = (*t)->ScorePairs(*pairs);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ModelSpec spec;
  spec.accuracy = {{"note", "test run"}};
  ASSERT_TRUE(CalibrateInto(*scores, "8 test pairs", &spec).ok());
  const std::string bundle = work.File("bundle");
  const auto written = (*t)->WriteBundle(bundle, spec);
  ASSERT_TRUE(written.ok()) << written.status();

  const auto model = FaceModel::Load(bundle, torch::kCPU);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelSpec& s = (*model)->spec();
  EXPECT_EQ(s.backbone.arch, "face-resnet");
  EXPECT_EQ(s.head.arch, "dense");
  EXPECT_EQ(s.thresholds.count("best_accuracy"), 1u);
  EXPECT_EQ(s.thresholds.count("far_1e-3"), 1u);
  EXPECT_TRUE(s.DefaultThreshold().ok());
  EXPECT_EQ(s.provenance["training"]["data"]["held_out_people"], 3);
  EXPECT_EQ(s.provenance["training"]["config"]["backbone"], "face-resnet");
  EXPECT_NE(s.model_id, testing::DefaultModel()->model_id());

  // The served embedding (detect, central face, align, backbone with flip, head, normalise) equals
  // the trainer's for the same image.
  const std::string image = LfwImage("Vladimir_Putin", 1);
  const auto ours = (*t)->EmbedImages({image});
  ASSERT_TRUE(ours.ok()) << ours.status();
  const auto served = ServedEmbedding(*model, image);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->sizes(), (std::vector<int64_t>{1, 128}));
  EXPECT_NEAR(served->norm().item<double>(), 1.0, 1e-5);
  EXPECT_LT((*served - *ours).abs().max().item<double>(), 1e-4);
}

// The fusion head: over a fusion bundle (dlib's ResNet and MobileFaceNet, imported here from the pinned
// weights) a dense head learns with the triplet loss on both networks' cached features; the loss falls, the
// bundle it writes holds both networks and the head, and FaceModel (the server's path) embeds as the
// trainer does.
TEST(TrainerTest, FusionHeadTrainsOverBothNetworksAndItsBundleServes) {
  testing::TempDir work;
  const auto fused = testing::ImportPinnedMobileFaceNet(work.File("fused"), /*with_face_resnet=*/true);
  ASSERT_TRUE(fused.ok()) << fused.status();

  TrainerConfig c = BaseConfig(work.File("run"));
  c.source_bundle = work.File("fused");
  c.backbone = "face-resnet";
  EXPECT_THAT(std::string(Trainer::Create(c).status().message()), HasSubstr("--backbone source"));
  c.backbone = "source";
  c.feature_views = 4;
  c.epochs = 4;
  c.sampler.batches_per_epoch = 4;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto summary = (*t)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->history.size(), 4U);
  EXPECT_LT(summary->history.back().loss, summary->history.front().loss);
  EXPECT_EQ((*t)->head()->input_dim(), 128 + 192);

  const std::string bundle = work.File("bundle");
  const auto written = (*t)->WriteBundle(bundle, ModelSpec());
  ASSERT_TRUE(written.ok()) << written.status();
  const auto model = FaceModel::Load(bundle, torch::kCPU);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->members(), 2U);
  EXPECT_EQ((*model)->spec().fused_backbones.at(0).arch, "mobilefacenet");
  EXPECT_EQ((*model)->spec().head.arch, "dense");
  EXPECT_EQ((*model)->spec().embedding_dim, 128);

  const std::string image = LfwImage("Vladimir_Putin", 1);
  const auto ours = (*t)->EmbedImages({image});
  ASSERT_TRUE(ours.ok()) << ours.status();
  const auto served = ServedEmbedding(*model, image);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->sizes(), (std::vector<int64_t>{1, 128}));
  EXPECT_LT((*served - *ours).abs().max().item<double>(), 1e-4);
}

// The fold protocol on three folds of three people each (two with five images, one with one): every
// fold trains on the other two folds' six people, is tested on its own pairs, and a final model trained
// on everyone quotes the protocol's accuracy and carries thresholds from the out-of-fold scores.
TEST(FoldProtocolTest, TrainsPerFoldWithoutTheFoldsPeopleAndWritesTheFinalModel) {
  testing::TempDir work;
  const std::string people = work.File("people.txt");
  std::ofstream(people) << "3\n3\nColin_Powell\t5\nTony_Blair\t5\nJean_Chretien\t1\n"
                        << "3\nDonald_Rumsfeld\t5\nGerhard_Schroeder\t5\nJohn_Ashcroft\t1\n"
                        << "3\nAriel_Sharon\t5\nHugo_Chavez\t5\nJunichiro_Koizumi\t1\n";
  const std::string pairs = work.File("pairs.txt");
  std::ofstream(pairs) << "3\t2\n"
                       << "Colin_Powell\t1\t2\nTony_Blair\t3\t4\n"
                       << "Colin_Powell\t3\tTony_Blair\t1\nJean_Chretien\t1\tColin_Powell\t5\n"
                       << "Donald_Rumsfeld\t1\t2\nGerhard_Schroeder\t2\t5\n"
                       << "Donald_Rumsfeld\t4\tJohn_Ashcroft\t1\nGerhard_Schroeder\t1\tDonald_Rumsfeld\t3\n"
                       << "Ariel_Sharon\t1\t3\nHugo_Chavez\t2\t4\n"
                       << "Ariel_Sharon\t2\tHugo_Chavez\t1\nJunichiro_Koizumi\t1\tAriel_Sharon\t5\n";
  FoldProtocolConfig c;
  c.base = BaseConfig(work.File("folds"));
  c.base.val_pairs.clear();
  c.base.head_params = {{"residual", true}};
  c.base.feature_views = 2;
  c.base.epochs = 1;
  c.base.warmup_epochs = 0;
  c.base.sampler.people_per_batch = 3;
  c.base.sampler.batches_per_epoch = 2;
  c.people_file = people;
  c.pairs_file = pairs;
  c.final_bundle = work.File("final");
  const auto result = RunFoldProtocol(c);
  ASSERT_TRUE(result.ok()) << result.status();
  const json& r = *result;
  ASSERT_EQ(r["folds"].size(), 3u);
  double mean = 0;
  for (const auto& fold : r["folds"]) {
    EXPECT_EQ(fold["train_people"], 6) << fold.dump();  // never the tested fold's three
    mean += fold["accuracy"].get<double>() / 3;
  }
  EXPECT_DOUBLE_EQ(r["mean_accuracy"].get<double>(), mean);
  EXPECT_EQ(r["baseline"]["folds"].size(), 3u);
  EXPECT_TRUE(r.contains("out_of_fold"));

  const auto model = FaceModel::Load(c.final_bundle, torch::kCPU);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelSpec& s = (*model)->spec();
  EXPECT_DOUBLE_EQ(s.accuracy["lfw_view2_fold_protocol"]["mean_accuracy"].get<double>(), mean);
  EXPECT_EQ(s.provenance["training"]["data"]["people"], 9);
  EXPECT_EQ(s.calibration["same_pairs"], 6);
  EXPECT_TRUE(s.DefaultThreshold().ok());
}

}  // namespace
}  // namespace veriface
