// veriface-eval's subcommands end to end on a handful of real LFW images, copied into a temporary
// folder in LFW layout in several formats (JPEG, PNG, grayscale PGM, BMP, another size), plus one
// image with no face in it; and how its records name paths (no machine's folders in them).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <sstream>

#include "core/common/file_util.h"
#include "core/image/decode.h"
#include "core/model/model_spec.h"
#include "tests/testing/test_env.h"
#include "trainer/eval/commands.h"
#include "trainer/eval/evaluator.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// The current directory for one scope: records name paths relative to it.
class InDirectory {
 public:
  explicit InDirectory(const std::string& dir) : before_(fs::current_path()) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(before_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  const fs::path before_;
};

// A checkout beside its shared data, as deploy/setup.sh lays them out: <root>/main, <root>/shared.
struct Checkout {
  Checkout() : root(fs::canonical(dir.path()).string()) {  // the current directory never names a link
    fs::create_directories(root + "/main/models/default");
    fs::create_directories(root + "/shared/data/lfw");
  }
  testing::TempDir dir;
  const std::string root;
};

TEST(RecordedPaths, DisplayPathIsRelativeToTheCurrentFolderOrItsParent) {
  const Checkout c;
  const InDirectory in(c.root + "/main");
  EXPECT_EQ(DisplayPath(c.root + "/main/models/default"), "models/default");
  EXPECT_EQ(DisplayPath(c.root + "/main/models/default/"), "models/default");
  EXPECT_EQ(DisplayPath(c.root + "/main"), ".");
  EXPECT_EQ(DisplayPath("./models/../models/default"), "models/default");
  EXPECT_EQ(DisplayPath(c.root + "/shared/data/lfw/pairs.txt"), "../shared/data/lfw/pairs.txt");
  EXPECT_EQ(DisplayPath("../shared/data/lfw"), "../shared/data/lfw");
  EXPECT_EQ(DisplayPath(c.root), "..");
  EXPECT_EQ(DisplayPath(c.root + "/mainly/x"), "../mainly/x");  // a sibling whose name begins like the checkout's
  // Above the parent: as given.
  const std::string above = fs::path(c.root).parent_path().string() + "/elsewhere/pairs.txt";
  EXPECT_EQ(DisplayPath(above), above);
  EXPECT_EQ(DisplayPath("../../elsewhere"), "../../elsewhere");
  EXPECT_EQ(DisplayPath(""), "");
}

TEST(RecordedPaths, CommandLineNamesTheToolAndNoMachineFolder) {
  const Checkout c;
  const InDirectory in(c.root + "/main");
  EXPECT_EQ(DisplayCommandLine({c.root + "/main/build/trainer/eval/veriface-eval", "calibrate", "--model",
                                c.root + "/main/models/default", "--lfw", c.root + "/shared/data/lfw",
                                "--pairs=" + c.root + "/shared/data/lfw/pairsDevTrain.txt", "--tta", "flip+shift=3",
                                "--threads", "2"}),
            "veriface-eval calibrate --model models/default --lfw ../shared/data/lfw "
            "--pairs=../shared/data/lfw/pairsDevTrain.txt --tta flip+shift=3 --threads 2");
  // Relative paths are already what was typed; a path outside the checkout's parent stays as it is.
  EXPECT_EQ(DisplayCommandLine({"build/trainer/eval/veriface-eval", "lfw", "--lfw", "../shared/data/lfw", "--out",
                                "/elsewhere/r.json"}),
            "veriface-eval lfw --lfw ../shared/data/lfw --out /elsewhere/r.json");
}

TEST(RecordedPaths, PlotsNameTheDataSetAfterThePairsFolder) {
  const Checkout c;
  const InDirectory in(c.root + "/main");
  EXPECT_EQ(DataSetName("../shared/data/lfw/pairs.txt"), "lfw");
  EXPECT_EQ(DataSetName("/data/casia-webface/pairs.txt"), "casia-webface");
  EXPECT_EQ(DataSetName("pairs.txt"), "main");
}

// Two folds of two same and two different pairs (10 images), in View 2's layout.
constexpr char kPairs[] =
    "2\t2\n"
    "Aaron_Peirsol\t1\t2\n"
    "Abel_Pacheco\t1\t4\n"
    "Aaron_Peirsol\t1\tAbel_Pacheco\t1\n"
    "Akhmed_Zakayev\t1\tNobody_Here\t1\n"
    "Akhmed_Zakayev\t1\t3\n"
    "Amber_Tamblyn\t1\t2\n"
    "Amber_Tamblyn\t1\tAaron_Peirsol\t3\n"
    "Abel_Pacheco\t4\tAkhmed_Zakayev\t3\n";

// View 1's layout over the same images, for calibration.
constexpr char kCalibrationPairs[] =
    "3\n"
    "Aaron_Peirsol\t1\t3\n"
    "Aaron_Peirsol\t2\t3\n"
    "Abel_Pacheco\t1\t4\n"
    "Aaron_Peirsol\t2\tAmber_Tamblyn\t2\n"
    "Abel_Pacheco\t1\tAmber_Tamblyn\t1\n"
    "Akhmed_Zakayev\t1\tAaron_Peirsol\t1\n";

class LfwEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const std::string lfw = testing::LfwDir();
    auto put = [](const std::string& person, int index, const std::string& ext, const cv::Mat& bgr) {
      fs::create_directories(fs::path(dir_->File("lfw")) / person);
      char name[256];
      std::snprintf(name, sizeof name, "%s/%s_%04d.%s", person.c_str(), person.c_str(), index, ext.c_str());
      ASSERT_TRUE(cv::imwrite(dir_->File("lfw/" + std::string(name)), bgr)) << name;
    };
    auto src = [&](const std::string& person, int index) {
      char name[256];
      std::snprintf(name, sizeof name, "%s/%s/%s_%04d.jpg", lfw.c_str(), person.c_str(), person.c_str(), index);
      return cv::imread(name);
    };
    put("Aaron_Peirsol", 1, "jpg", src("Aaron_Peirsol", 1));
    put("Aaron_Peirsol", 2, "png", src("Aaron_Peirsol", 2));
    put("Aaron_Peirsol", 3, "jpg", src("Aaron_Peirsol", 3));
    put("Abel_Pacheco", 1, "jpg", src("Abel_Pacheco", 1));
    cv::Mat gray;
    cv::cvtColor(src("Abel_Pacheco", 4), gray, cv::COLOR_BGR2GRAY);
    put("Abel_Pacheco", 4, "pgm", gray);
    put("Akhmed_Zakayev", 1, "jpg", src("Akhmed_Zakayev", 1));
    put("Akhmed_Zakayev", 3, "bmp", src("Akhmed_Zakayev", 3));
    put("Amber_Tamblyn", 1, "jpg", src("Amber_Tamblyn", 1));
    cv::Mat big;
    cv::resize(src("Amber_Tamblyn", 2), big, cv::Size(400, 320));
    put("Amber_Tamblyn", 2, "jpeg", big);
    put("Nobody_Here", 1, "png", cv::Mat(250, 250, CV_8UC3, cv::Scalar(128, 128, 128)));
    std::ofstream(dir_->File("pairs.txt")) << kPairs;
    std::ofstream(dir_->File("calibration.txt")) << kCalibrationPairs;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static LfwOptions Options() {
    LfwOptions o;
    o.common.model_dir = testing::DefaultModelDir();
    o.common.lfw_dir = dir_->File("lfw");
    o.common.cache_path = dir_->File("cache/eval.sqlite");
    o.common.progress = false;
    o.common.batch = 4;
    o.pairs_path = dir_->File("pairs.txt");
    return o;
  }

  static testing::TempDir* dir_;
};
testing::TempDir* LfwEndToEnd::dir_ = nullptr;

// How many backbone chips per face a test-time spec needs that `known` does not already hold.
int64_t NewViews(const std::string& spec, const TtaConfig& known) {
  const TtaConfig wanted = *ParseTta(spec);  // a named copy: a range-for over a temporary's member dangles
  int64_t n = 0;
  for (const ChipView& v : wanted.views) {
    bool seen = false;
    for (const ChipView& k : known.views) seen = seen || k.Key() == v.Key();
    n += !seen;
  }
  return n;
}

TEST_F(LfwEndToEnd, RunsTheProtocolAndCachesEverything) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  // The run uses the bundle's own test-time setting, whatever it is.
  const int64_t views = static_cast<int64_t>(model->test_time().views.size());
  LfwOptions o = Options();
  o.out_json = dir_->File("out/results.json");
  o.plots_dir = dir_->File("plots");
  std::ostringstream log;
  const auto first = RunLfw(o, log);
  ASSERT_TRUE(first.ok()) << first.status();
  const json& r = *first;
  EXPECT_EQ(r["data"]["pairs"], 8);
  EXPECT_EQ(r["data"]["folds"], 2);
  EXPECT_EQ(r["faces"]["images"], 10);
  EXPECT_EQ(r["faces"]["with_face"], 9);
  EXPECT_EQ(r["faces"]["without_face"], 1);
  EXPECT_EQ(r["faces"]["without_face_images"][0], "Nobody_Here/Nobody_Here_0001");
  EXPECT_EQ(r["test_time"]["spec"], model->spec().TestTimeSpec());
  EXPECT_EQ(r["test_time"]["chips_per_image"], views);
  ASSERT_EQ(r["cross_validation"]["folds"].size(), 2u);
  // Same-person pairs of real faces score well above different people.
  EXPECT_GT(r["all_pairs"]["similarity_same"]["mean"].get<double>(),
            r["all_pairs"]["similarity_different"]["mean"].get<double>() + 0.05);
  EXPECT_GT(r["all_pairs"]["auc"].get<double>(), 0.9);
  // Every pair the folds got wrong is listed.
  int64_t wrong = 0;
  for (const json& f : r["cross_validation"]["folds"]) {
    wrong += std::llround((1 - f["accuracy"].get<double>()) * f["pairs"].get<double>());
  }
  EXPECT_EQ(static_cast<int64_t>(r["misclassified"].size()), wrong);
  EXPECT_EQ(r["timing"]["detections_computed"], 10);
  EXPECT_EQ(r["timing"]["chips_computed"], 10 * views);
  EXPECT_THAT(log.str(), HasSubstr("none in 1 (Nobody_Here/Nobody_Here_0001"));
  EXPECT_THAT(log.str(), HasSubstr("accuracy"));
  for (const char* png : {"roc.png", "similarity.png"}) {
    const cv::Mat img = cv::imread(dir_->File(std::string("plots/") + png));
    EXPECT_FALSE(img.empty()) << png;
  }
  std::ifstream written(o.out_json);
  const json back = json::parse(written);
  EXPECT_EQ(back["cross_validation"], r["cross_validation"]);

  // Second run: every detection and feature comes from the cache, with the same result.
  std::ostringstream log2;
  o.out_json.clear();
  o.plots_dir.clear();
  const auto second = RunLfw(o, log2);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)["timing"]["detections_computed"], 0);
  EXPECT_EQ((*second)["timing"]["detections_cached"], 10);
  EXPECT_EQ((*second)["timing"]["chips_computed"], 0);
  EXPECT_EQ((*second)["timing"]["chips_cached"], 10 * views);
  EXPECT_EQ((*second)["all_pairs"]["similarity_same"], r["all_pairs"]["similarity_same"]);
  EXPECT_EQ((*second)["cross_validation"], r["cross_validation"]);

  // A new test-time view computes only itself.
  o.common.tta = "flip+zoom=0.07";
  const int64_t added = NewViews(o.common.tta, model->test_time());
  ASSERT_GT(added, 0);
  const auto third = RunLfw(o, log2);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)["timing"]["chips_computed"], 10 * added);
  EXPECT_EQ((*third)["timing"]["chips_cached"], 10 * (6 - added));
}

TEST_F(LfwEndToEnd, FlipViewsReproduceTheCoreEmbedder) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  LfwImageResolver resolver(dir_->File("lfw"));
  EmbedOptions eo;
  eo.progress = false;
  eo.tta = "flip";
  const auto e = EmbedImages(*model, {{"Aaron_Peirsol", 2}, {"Abel_Pacheco", 4}}, resolver, eo);
  ASSERT_TRUE(e.ok()) << e.status();
  for (size_t i = 0; i < 2; ++i) {
    const cv::Mat rgb = *LoadImageFile(e->images[i].path);
    const torch::Tensor ref = model->Embed({model->Align(rgb, e->images[i].face)}).value();
    std::vector<float> v(ref.data_ptr<float>(), ref.data_ptr<float>() + ref.size(1));
    EXPECT_GT(Cosine(v, e->embeddings[i]), 1 - 1e-5) << e->images[i].path;
  }
}

TEST_F(LfwEndToEnd, TrainPairsGiveTheThreshold) {
  LfwOptions o = Options();
  o.train_pairs_path = dir_->File("calibration.txt");
  std::ostringstream log;
  const InDirectory in(dir_->path());  // the paths given are absolute; the results name them from here
  const auto r = RunLfw(o, log);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->contains("train"));
  EXPECT_EQ((*r)["train"]["pairs"], 6);
  EXPECT_THAT(log.str(), HasSubstr("chosen on calibration.txt"));
  EXPECT_EQ((*r)["data"]["lfw_dir"], "lfw");
  EXPECT_EQ((*r)["data"]["pairs_file"], "pairs.txt");
  EXPECT_EQ((*r)["train"]["pairs_file"], "calibration.txt");
}

TEST_F(LfwEndToEnd, BadInputsGiveClearErrors) {
  LfwOptions o = Options();
  std::ofstream(dir_->File("missing.txt")) << "1\nAaron_Peirsol\t1\t9\nAaron_Peirsol\t1\tAbel_Pacheco\t1\n";
  o.pairs_path = dir_->File("missing.txt");
  std::ostringstream log;
  auto r = RunLfw(o, log);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("Aaron_Peirsol_0009"));

  fs::create_directories(dir_->File("lfw/Broken_File"));
  std::ofstream(dir_->File("lfw/Broken_File/Broken_File_0001.jpg")) << "not a jpeg at all";
  std::ofstream(dir_->File("broken.txt")) << "1\nAaron_Peirsol\t1\t2\nAaron_Peirsol\t1\tBroken_File\t1\n";
  o.pairs_path = dir_->File("broken.txt");
  r = RunLfw(o, log);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("Broken_File_0001.jpg"));

  o.pairs_path = dir_->File("pairs.txt");
  o.common.tta = "flip+sharpen";
  r = RunLfw(o, log);
  EXPECT_THAT(r.status().message(), HasSubstr("'sharpen'"));

  o.common.tta.clear();
  o.common.lfw_dir = dir_->File("no-such-folder");
  r = RunLfw(o, log);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

// A bundle beside the default one: its own model.json, the same weights (linked).
std::string CopyBundle(const std::string& to) {
  fs::create_directories(to);
  const fs::path from = testing::DefaultModelDir();
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.path().filename() == "model.json") {
      fs::copy_file(e.path(), fs::path(to) / "model.json");
    } else {
      fs::create_symlink(fs::absolute(e.path()), fs::path(to) / e.path().filename());
    }
  }
  return to;
}

double SimilarityIn(const std::string& text) {
  std::smatch m;
  const std::regex re("cosine similarity ([0-9.\\-]+)");
  if (!std::regex_search(text, m, re)) return NAN;
  return std::stod(m[1]);
}

// The server and the pair command embed through FaceModel::Cut + Embed; the evaluator cuts, caches and
// averages view by view. Both must give the same embedding for a bundle with several crops, or the
// thresholds calibrated by one would not fit the other.
TEST_F(LfwEndToEnd, BundleCropsReproduceTheCoreEmbedder) {
  const std::string bundle = CopyBundle(dir_->File("crops-bundle"));
  ModelSpec spec = *ReadModelSpec(bundle);
  spec.crops = "shift=3+faceapi";
  spec.flip_average = true;
  ASSERT_TRUE(WriteModelSpec(bundle, spec).ok());
  const auto model = FaceModel::Load(bundle, torch::Device(torch::kCPU));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->spec().TestTimeSpec(), "flip+shift=3+faceapi");
  EXPECT_EQ((*model)->test_time().views.size(), 12u);

  LfwImageResolver resolver(dir_->File("lfw"));
  EmbedOptions eo;
  eo.progress = false;  // and no tta: the bundle's own
  const auto e = EmbedImages(**model, {{"Aaron_Peirsol", 2}, {"Abel_Pacheco", 4}}, resolver, eo);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->tta.views.size(), 12u);
  std::vector<FaceViews> faces;
  for (size_t i = 0; i < 2; ++i) {
    faces.push_back((*model)->Cut(*LoadImageFile(e->images[i].path), e->images[i].face));
    EXPECT_EQ(faces.back().crops.size(), 6u);
  }
  const torch::Tensor ref = (*model)->Embed(faces).value();  // both faces in one batch, as the server sends them
  for (size_t i = 0; i < 2; ++i) {
    const float* row = ref[static_cast<int64_t>(i)].data_ptr<float>();
    const std::vector<float> v(row, row + ref.size(1));
    EXPECT_GT(Cosine(v, e->embeddings[i]), 1 - 1e-5) << e->images[i].path;
    // ... and differs from the flip average of the template chip alone: the crops do count.
    const torch::Tensor flip_only =
        (*model)->Embed({(*model)->Align(*LoadImageFile(e->images[i].path), e->images[i].face)}).value();
    const std::vector<float> f(flip_only.data_ptr<float>(), flip_only.data_ptr<float>() + flip_only.size(1));
    EXPECT_LT(Cosine(f, e->embeddings[i]), 1 - 1e-4) << e->images[i].path;
  }
}

TEST_F(LfwEndToEnd, CalibrateWritesThresholdsThatThePairCommandUses) {
  const std::string bundle = CopyBundle(dir_->File("bundle"));
  // Start uncalibrated, whatever the default bundle holds.
  ModelSpec before = *ReadModelSpec(bundle);
  before.thresholds.clear();
  before.calibration = json::object();
  ASSERT_TRUE(WriteModelSpec(bundle, before).ok());

  // Without thresholds the pair command gives the similarity only.
  const std::string same_a = dir_->File("lfw/Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
  const std::string same_b = dir_->File("lfw/Aaron_Peirsol/Aaron_Peirsol_0003.jpg");
  const std::string other = dir_->File("lfw/Amber_Tamblyn/Amber_Tamblyn_0001.jpg");
  {
    std::ostringstream out;
    ASSERT_TRUE(RunPair(bundle, same_a, same_b, 1, out).ok());
    EXPECT_THAT(out.str(), HasSubstr("no calibrated thresholds"));
    EXPECT_THAT(out.str(), HasSubstr("cosine similarity"));
  }

  CalibrateOptions c;
  c.common = Options().common;
  c.common.model_dir = bundle;
  c.pairs_path = dir_->File("calibration.txt");
  c.test_pairs_path = dir_->File("pairs.txt");
  // As veriface-eval records its own command line: run from the build folder, every path absolute.
  const char* env_build = std::getenv("VERIFACE_BINARY_DIR");
  const std::string build = env_build != nullptr && *env_build != '\0' ? env_build : fs::current_path().string();
  std::ostringstream log;
  absl::StatusOr<json> record;
  {
    const InDirectory in(dir_->path());  // the temporary folder plays the project root
    c.common.command_line = DisplayCommandLine({build + "/trainer/eval/veriface-eval", "calibrate", "--model", bundle,
                                                "--lfw", c.common.lfw_dir, "--pairs", c.pairs_path, "--test-pairs",
                                                c.test_pairs_path, "--cache", c.common.cache_path});
    record = RunCalibrate(c, log);
  }
  ASSERT_TRUE(record.ok()) << record.status();
  const ModelSpec after = *ReadModelSpec(bundle);
  // The record names no machine's folder, neither the build's nor the temporary one.
  EXPECT_EQ(after.calibration, *record);
  for (const std::string& machine_dir : {build, dir_->path(), fs::canonical(dir_->path()).string()}) {
    EXPECT_THAT(after.calibration.dump(), Not(HasSubstr(machine_dir)));
  }
  EXPECT_EQ((*record)["command"],
            "veriface-eval calibrate --model bundle --lfw lfw --pairs calibration.txt --test-pairs pairs.txt "
            "--cache cache/eval.sqlite");
  EXPECT_EQ((*record)["set"], "calibration.txt in .");
  EXPECT_EQ((*record)["held_out_check"]["pairs_file"], "pairs.txt");
  EXPECT_EQ(after.model_id, before.model_id);
  for (const char* op : {"best_accuracy", "far_1e-2", "far_1e-3"}) EXPECT_EQ(after.thresholds.count(op), 1u) << op;
  EXPECT_EQ(after.calibration["pairs"], 6);
  EXPECT_EQ(after.calibration["test_time"], before.TestTimeSpec());
  EXPECT_TRUE(after.calibration.contains("held_out_check"));
  EXPECT_THAT(log.str(), HasSubstr("wrote thresholds"));
  // Three same and three different real pairs are separable: the best threshold sits between them.
  EXPECT_DOUBLE_EQ(after.calibration["results"]["best_accuracy"]["accuracy"].get<double>(), 1.0);

  std::ostringstream same, different;
  ASSERT_TRUE(RunPair(bundle, same_a, same_b, 1, same).ok());
  ASSERT_TRUE(RunPair(bundle, same_a, other, 1, different).ok());
  EXPECT_THAT(same.str(), HasSubstr("MATCH: same person"));
  EXPECT_THAT(different.str(), HasSubstr("NO MATCH"));
  EXPECT_THAT(same.str(), HasSubstr("left eye ("));
  EXPECT_GT(SimilarityIn(same.str()), SimilarityIn(different.str()));

  // A dry run with another test-time setting is allowed; writing it is not.
  c.common.tta = "flip+zoom=0.07";
  EXPECT_EQ(RunCalibrate(c, log).status().code(), absl::StatusCode::kFailedPrecondition);
  c.dry_run = true;
  EXPECT_TRUE(RunCalibrate(c, log).ok());
  EXPECT_EQ(ReadModelSpec(bundle)->thresholds, after.thresholds);
}

TEST_F(LfwEndToEnd, PairReportsImagesWithoutAFace) {
  std::ostringstream out;
  const absl::Status s = RunPair(testing::DefaultModelDir(), dir_->File("lfw/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"),
                                 dir_->File("lfw/Nobody_Here/Nobody_Here_0001.png"), 1, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("no face found in"));
  EXPECT_THAT(out.str(), HasSubstr("0 faces"));
  EXPECT_EQ(RunPair(testing::DefaultModelDir(), "/no/such.jpg", "/no/such.jpg", 1, out).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace veriface
