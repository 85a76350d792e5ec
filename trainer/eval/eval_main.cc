// veriface-eval: try the pipeline on two photos, measure a model on LFW's protocol, and calibrate its
// thresholds.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/common/openmp_env.h"
#include "trainer/eval/commands.h"

namespace {

void AddCommon(CLI::App* cmd, veriface::CommonEvalOptions* o, bool lfw_required) {
  cmd->add_option("--model", o->model_dir, "model bundle folder")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda:N or auto")->capture_default_str();
  auto* lfw = cmd->add_option("--lfw", o->lfw_dir, "image folder in LFW layout (Person/Person_NNNN.<ext>)");
  if (lfw_required) lfw->required();
  if (const char* env = std::getenv("VERIFACE_LFW_DIR"); env && !lfw_required) o->lfw_dir = env;
  cmd->add_option("--cache", o->cache_path, "cache file for detections and features ('none': no cache)")
      ->capture_default_str();
  cmd->add_option("--tta", o->tta,
                  "test-time augmentation: terms joined by '+': none, flip, shift=S, zoom=Z, faceapi, nobase "
                  "(default: the bundle's own)");
  cmd->add_option("--threads", o->threads, "LibTorch threads (0: one per core)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "images per backbone pass")->capture_default_str();
  cmd->add_flag("--no-progress{false}", o->progress, "no progress bars on stderr");
}

int Fail(const std::string& command, const absl::Status& status) {
  std::cerr << "veriface-eval " << command << ": " << status.message() << "\n";
  return EXIT_FAILURE;
}

}  // namespace

int main(int argc, char** argv) {
  veriface::UseShortOpenMpSpins(argv);  // may restart the program; see core/common/openmp_env.h
  CLI::App app{"veriface-eval: face verification on photo pairs and on LFW's protocol"};
  app.require_subcommand(1);
  const std::string command_line = veriface::DisplayCommandLine(std::vector<std::string>(argv, argv + argc));

  std::string model_dir = "models/default", device = "cpu", image_a, image_b;
  int pair_threads = 2;
  CLI::App* pair = app.add_subcommand("pair", "faces in two photos and whether the central ones match");
  pair->add_option("A", image_a, "first photo")->required();
  pair->add_option("B", image_b, "second photo")->required();
  pair->add_option("--model", model_dir, "model bundle folder")->capture_default_str();
  pair->add_option("--threads", pair_threads, "LibTorch threads (0: one per core)")->capture_default_str();
  pair->add_option("--device", device, "cpu, cuda:N or auto")->capture_default_str();

  veriface::LfwOptions lfw;
  lfw.common.cache_path = veriface::DefaultCachePath();
  CLI::App* lfw_cmd = app.add_subcommand("lfw", "LFW protocol: accuracy (10-fold), AUC, EER, TAR at FAR, plots");
  AddCommon(lfw_cmd, &lfw.common, true);
  lfw_cmd->add_option("--pairs", lfw.pairs_path, "pairs file in LFW format (default: <lfw>/pairs.txt)");
  lfw_cmd->add_option("--train-pairs", lfw.train_pairs_path,
                      "choose the threshold on these pairs instead (e.g. View 1: --pairs pairsDevTest.txt "
                      "--train-pairs pairsDevTrain.txt)");
  lfw_cmd->add_option("--out", lfw.out_json, "write the results as JSON here");
  lfw_cmd->add_option("--plots", lfw.plots_dir, "write roc.png and similarity.png into this folder");

  veriface::CalibrateOptions cal;
  cal.common.cache_path = veriface::DefaultCachePath();
  CLI::App* cal_cmd =
      app.add_subcommand("calibrate", "choose thresholds on calibration pairs and write them into model.json");
  AddCommon(cal_cmd, &cal.common, false);
  cal_cmd->add_option("--pairs", cal.pairs_path, "calibration pairs (default: <lfw>/pairsDevTrain.txt)");
  cal_cmd->add_option("--test-pairs", cal.test_pairs_path,
                      "held-out pairs to check the thresholds on (default: <lfw>/pairsDevTest.txt; 'none')");
  cal_cmd->add_option("--default-operating-point", cal.default_operating_point,
                      "make this operating point the bundle's default (best_accuracy, far_1e-2, far_1e-3)");
  cal_cmd->add_flag("--dry-run", cal.dry_run, "print the thresholds, leave model.json alone");

  CLI11_PARSE(app, argc, argv);

  if (pair->parsed()) {
    const absl::Status s = veriface::RunPair(model_dir, image_a, image_b, pair_threads, std::cout, device);
    return s.ok() ? EXIT_SUCCESS : Fail("pair", s);
  }
  for (veriface::CommonEvalOptions* o : {&lfw.common, &cal.common}) {
    if (o->cache_path == "none") o->cache_path.clear();
    o->command_line = command_line;
  }
  if (lfw_cmd->parsed()) {
    const auto r = veriface::RunLfw(lfw, std::cout);
    return r.ok() ? EXIT_SUCCESS : Fail("lfw", r.status());
  }
  if (cal.common.lfw_dir.empty()) {
    return Fail("calibrate", absl::InvalidArgumentError("no LFW folder: pass --lfw DIR or set VERIFACE_LFW_DIR"));
  }
  const auto r = veriface::RunCalibrate(cal, std::cout);
  return r.ok() ? EXIT_SUCCESS : Fail("calibrate", r.status());
}
