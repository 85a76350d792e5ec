// veriface-train: trains a face-embedding model with the triplet loss and writes a bundle that
// veriface-eval and veriface-server load unchanged.
//
//   veriface-train train  ...  one run: train (optionally validating on held-out pairs), write a bundle
//   veriface-train folds  ...  the LFW View 2 fold protocol for a trained model (+ a final model)
//
// Run `veriface-train train --help` for every option.

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/file_util.h"
#include "core/common/openmp_env.h"
#include "trainer/calibration/calibration.h"
#include "trainer/training/fold_protocol.h"
#include "trainer/training/trainer.h"

namespace veriface {
namespace {

using nlohmann::json;

// Flag values that need parsing after CLI11 has filled them in.
struct RawFlags {
  std::string train_folds, val_folds, backbone_params = "{}", head_params = "{}", mining = "batch-hard",
                                      distance = "squared";
  bool train_backbone = false, no_augment = false;
  double time_budget_min = 0;
  double colour = -1;
};

void AddTrainerOptions(CLI::App* app, TrainerConfig* c, RawFlags* raw) {
  app->add_option("--data", c->data_dir, "folder of face images in LFW layout (Person/image.jpg)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app->add_option("--source-model", c->source_bundle, "bundle giving the detector (and face-resnet's weights)")
      ->capture_default_str();
  app->add_option("--work-dir", c->work_dir, "checkpoints, log.csv and curves go here")->required();
  app->add_option("--cache-dir", c->cache_dir, "faces, chips and features cache (empty: none)")->capture_default_str();
  app->add_flag("--resume", c->resume, "continue the run in --work-dir from its last checkpoint");

  app->add_option("--backbone", c->backbone,
                  "face-resnet, mobilenetv2, vgg19, inception-resnet-v2, or source (the source bundle's own "
                  "network or networks, frozen: for a fusion bundle, its fusion head)")
      ->capture_default_str();
  app->add_option("--backbone-params", raw->backbone_params, "JSON, e.g. '{\"input_size\":112,\"width\":0.5}'")
      ->capture_default_str();
  app->add_flag("--train-backbone", raw->train_backbone,
                "fine-tune face-resnet too (by default it is frozen and the head trains over cached features)");
  app->add_option("--head", c->head, "head architecture")->capture_default_str();
  app->add_option("--head-params", raw->head_params, "JSON, e.g. '{\"residual\":true}' or '{\"hidden\":[512]}'")
      ->capture_default_str();
  app->add_option("--views", c->feature_views, "frozen backbone: cached views per training face")
      ->capture_default_str();

  app->add_option("--head-init", c->head_init,
                  "default, or whiten: centre and within-class whiten a linear dense head in closed form on the "
                  "training people first (frozen face-resnet; --epochs 0 keeps it as fitted)")
      ->capture_default_str();
  app->add_option("--whiten-shrinkage", c->whitening.shrinkage, "whiten: shrinkage of the within-class covariance")
      ->capture_default_str();
  app->add_option("--whiten-power", c->whitening.power, "whiten: 0 centring only, 1 full whitening")
      ->capture_default_str();
  app->add_option("--whiten-centre", c->whitening.centre,
                  "whiten: subtract this multiple of the training mean (1 centres; < 0 adds it)")
      ->capture_default_str();
  app->add_option("--whiten-dim", c->whitening.output_dim,
                  "whiten: LDA output dimension (0: the input's; must match the head's output_dim)")
      ->capture_default_str();

  app->add_option("--mining", raw->mining, "batch-hard, semi-hard, batch-all or random")->capture_default_str();
  app->add_option("--margin", c->loss.margin, "triplet margin")->capture_default_str();
  app->add_option("--distance", raw->distance, "squared or euclidean")->capture_default_str();
  app->add_option("-P,--people-per-batch", c->sampler.people_per_batch, "people per batch")->capture_default_str();
  app->add_option("-K,--images-per-person", c->sampler.images_per_person, "images per person per batch")
      ->capture_default_str();
  app->add_option("--extra-negatives", c->sampler.extra_negatives, "images of single-image people added to each batch")
      ->capture_default_str();
  app->add_option("--batches-per-epoch", c->sampler.batches_per_epoch,
                  "0: one pass over the people with two or more images")
      ->capture_default_str();

  app->add_flag("--no-augment", raw->no_augment, "no random flip / crop / colour changes");
  app->add_option("--aug-shift", c->augment.max_shift, "largest shift, fraction of the chip")->capture_default_str();
  app->add_option("--aug-scale", c->augment.max_scale, "largest zoom change")->capture_default_str();
  app->add_option("--aug-rotate", c->augment.max_rotation_deg, "largest rotation, degrees")->capture_default_str();
  app->add_option("--aug-colour", raw->colour, "brightness, contrast and saturation jitter (default 0.2)");

  app->add_option("--optimizer", c->optimizer, "adam, adamw or sgd")->capture_default_str();
  app->add_option("--lr", c->lr, "peak learning rate")->capture_default_str();
  app->add_option("--weight-decay", c->weight_decay, "weight decay")->capture_default_str();
  app->add_option("--momentum", c->momentum, "sgd momentum (Nesterov)")->capture_default_str();
  app->add_option("--schedule", c->schedule, "cosine, step or constant")->capture_default_str();
  app->add_option("--warmup", c->warmup_epochs, "linear warm-up, epochs")->capture_default_str();
  app->add_option("--step-every", c->step_every, "step schedule: epochs between decays")->capture_default_str();
  app->add_option("--step-gamma", c->step_gamma, "step schedule: decay factor")->capture_default_str();
  app->add_option("--clip", c->clip_grad_norm, "gradient norm clipping (0: off)")->capture_default_str();
  app->add_option("--epochs", c->epochs, "epochs")->capture_default_str();
  app->add_option("--seed", c->seed, "random seed (initialisation, sampling, augmentation)")->capture_default_str();
  app->add_option("--time-budget", raw->time_budget_min, "minutes; no epoch starts that would end past it (0: none)");
  app->add_option("--stop-after", c->stop_after, "stop after this many epochs in this run (resume later)");

  app->add_option("--device", c->device, "cpu, cuda:N or auto")->capture_default_str();
  app->add_option("--threads", c->threads, "LibTorch threads (0: one per core)")->capture_default_str();
  app->add_option("--loader-threads", c->loader_threads, "batch-building and face-cache threads")
      ->capture_default_str();
}

absl::Status FinishConfig(const RawFlags& raw, int num_train_folds, int num_val_folds, TrainerConfig* c) {
  try {
    c->backbone_params = json::parse(raw.backbone_params);
    c->head_params = json::parse(raw.head_params);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("--backbone-params / --head-params must be JSON: ", e.what()));
  }
  auto mining = ParseMining(raw.mining);
  if (!mining.ok()) return mining.status();
  c->loss.mining = *mining;
  auto distance = ParseTripletDistance(raw.distance);
  if (!distance.ok()) return distance.status();
  c->loss.distance = *distance;
  c->freeze_backbone = c->backbone == "source" || (c->backbone == "face-resnet" && !raw.train_backbone);
  c->augment.enabled = !raw.no_augment;
  if (raw.colour >= 0) c->augment.brightness = c->augment.contrast = c->augment.saturation = raw.colour;
  c->time_budget_s = raw.time_budget_min * 60;
  auto train_folds = ParseFoldList(raw.train_folds, num_train_folds);
  if (!train_folds.ok()) return train_folds.status();
  c->train_folds = *train_folds;
  auto val_folds = ParseFoldList(raw.val_folds, num_val_folds);
  if (!val_folds.ok()) return val_folds.status();
  c->val_folds = *val_folds;
  return absl::OkStatus();
}

json SummaryJson(const TrainSummary& s) {
  return {{"train_people", s.train_people},
          {"train_images", s.train_images},
          {"people_with_two_or_more_images", s.anchor_people},
          {"held_out_people", s.held_out_people},
          {"images_without_face_skipped", s.no_face_images},
          {"val_pairs", s.val_pairs},
          {"val_images_without_face", s.val_no_face_images},
          {"best_epoch", s.best_epoch},
          {"finished", s.finished},
          {"stop_reason", s.stop_reason},
          {"history", s.history}};
}

// Accuracy on scored pairs the way the trainer validates: at the best threshold on the pairs
// themselves, and 10-fold cross-validated over interleaved folds.
json ScoresJson(const VerificationScores& scores) {
  std::vector<int> folds;
  for (size_t i = 0; i < scores.size(); ++i) folds.push_back(static_cast<int>(i % 10));
  const auto cv = CrossValidate(scores, folds);
  const auto best = scores.BestAccuracyThreshold();
  return {{"accuracy_at_best_threshold", best.accuracy},
          {"best_threshold", best.threshold},
          {"accuracy_10fold_cv", cv.ok() ? cv->mean_accuracy : best.accuracy},
          {"auc", scores.Auc()}};
}

int Fail(const absl::Status& s) {
  std::cerr << "veriface-train: " << s.message() << "\n";
  return EXIT_FAILURE;
}

// Number of folds in a people or pairs file, for checking fold lists (1 when no file is given).
int FoldsOf(const std::string& people, const std::string& pairs) {
  if (!people.empty()) {
    auto p = ReadPeopleFile(people);
    if (p.ok()) return static_cast<int>(p->folds.size());
  }
  if (!pairs.empty()) {
    auto p = ReadPairsFile(pairs);
    if (p.ok()) return p->num_folds;
  }
  return 1;
}

}  // namespace
}  // namespace veriface

int main(int argc, char** argv) {
  using namespace veriface;
  veriface::UseShortOpenMpSpins(argv);  // may restart the program; see core/common/openmp_env.h
  // Batches are built on loader threads and freed on the training thread; with glibc's default of one
  // arena per thread that pattern fragments the heap and the resident size keeps growing. Two arenas
  // keep it flat at no measurable cost.
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{"veriface-train: face embeddings with the triplet loss (Siamese network, online mining)"};
  app.require_subcommand(1);

  TrainerConfig c;
  c.source_bundle = "models/default";
  c.cache_dir = ".cache/veriface";
  c.progress = &std::cerr;
  RawFlags raw;
  std::string out, result_path;

  CLI::App* train = app.add_subcommand("train", "train one model; validate on held-out pairs; write a bundle");
  AddTrainerOptions(train, &c, &raw);
  train->add_option("--train-people", c.train_people, "LFW people file of who may train (default: everyone)");
  train->add_option("--train-folds", raw.train_folds, "folds of --train-people, e.g. 2-10 (default: all)");
  train->add_option("--val-pairs", c.val_pairs, "LFW pairs file validated on each epoch (its people never train)");
  train->add_option("--val-folds", raw.val_folds, "folds of --val-pairs (default: all)");
  train->add_option("--held-out-pairs", c.held_out_pairs, "more pairs files whose people must not train");
  train->add_option("--out", out, "bundle to write (thresholds calibrated on the validation pairs)");
  train->add_option("--result", result_path, "JSON summary to write");

  FoldProtocolConfig folds;
  std::string fold_list;
  CLI::App* folds_cmd = app.add_subcommand("folds", "LFW View 2 fold protocol for a trained model");
  AddTrainerOptions(folds_cmd, &c, &raw);
  folds_cmd->add_option("--people", folds.people_file, "View 2 people.txt")->required()->check(CLI::ExistingFile);
  folds_cmd->add_option("--pairs", folds.pairs_file, "View 2 pairs.txt")->required()->check(CLI::ExistingFile);
  folds_cmd->add_option("--folds", fold_list, "folds to run, e.g. 1-3 (default: all)");
  folds_cmd->add_option("--final-out", folds.final_bundle,
                        "after all folds, train on every fold's people and write this bundle");
  folds_cmd->add_option("--result", result_path, "JSON result to write");

  CLI11_PARSE(app, argc, argv);

  if (train->parsed()) {
    const absl::Status ok = FinishConfig(raw, FoldsOf(c.train_people, ""), FoldsOf("", c.val_pairs), &c);
    if (!ok.ok()) return Fail(ok);
    auto trainer = Trainer::Create(c);
    if (!trainer.ok()) return Fail(trainer.status());
    auto summary = (*trainer)->Run();
    if (!summary.ok()) return Fail(summary.status());
    json result = {{"command", "train"}, {"config", c.OutcomeJson()}, {"summary", SummaryJson(*summary)}};
    if (!c.val_pairs.empty()) {
      auto pairs = ReadPairsFile(c.val_pairs);
      if (!pairs.ok()) return Fail(pairs.status());
      auto trained = (*trainer)->ScorePairs(*pairs, c.val_folds);
      if (!trained.ok()) return Fail(trained.status());
      auto source = (*trainer)->ScorePairsWithSource(*pairs, c.val_folds);
      if (!source.ok()) return Fail(source.status());
      result["validation"] = {{"pairs", DisplayPath(c.val_pairs)},
                              {"trained", ScoresJson(*trained)},
                              {"source_bundle", ScoresJson(*source)}};
      std::cerr << absl::StrFormat(
          "validation pairs: trained %.2f%% (10-fold %.2f%%), source bundle %.2f%% (10-fold %.2f%%)\n",
          100 * result["validation"]["trained"]["accuracy_at_best_threshold"].get<double>(),
          100 * result["validation"]["trained"]["accuracy_10fold_cv"].get<double>(),
          100 * result["validation"]["source_bundle"]["accuracy_at_best_threshold"].get<double>(),
          100 * result["validation"]["source_bundle"]["accuracy_10fold_cv"].get<double>());
    }
    if (!summary->finished) {
      std::cerr << summary->stop_reason << "\n";
    } else if (!out.empty()) {
      ModelSpec spec;
      if (!c.val_pairs.empty()) {
        auto pairs = ReadPairsFile(c.val_pairs);
        if (!pairs.ok()) return Fail(pairs.status());
        auto scores = (*trainer)->ScorePairs(*pairs, c.val_folds);
        if (!scores.ok()) return Fail(scores.status());
        const absl::Status calibrated = ApplyCalibration(
            Calibrate(*scores, {"veriface-train", DisplayPath(c.val_pairs), Trainer::kTestTime}), "", &spec);
        if (!calibrated.ok()) return Fail(calibrated);
        // No epoch at all (a closed-form head): the pairs scored just now.
        const json scored = ScoresJson(*scores);
        const bool trained = summary->best_epoch >= 1;
        const EpochRecord best =
            trained ? summary->history[static_cast<size_t>(summary->best_epoch - 1)] : EpochRecord{};
        spec.accuracy = {
            {"validation",
             {{"pairs", DisplayPath(c.val_pairs)},
              {"accuracy_at_best_threshold",
               trained ? best.val_accuracy : scored["accuracy_at_best_threshold"].get<double>()},
              {"accuracy_10fold_cv", trained ? best.val_cv_accuracy : scored["accuracy_10fold_cv"].get<double>()},
              {"auc", trained ? best.val_auc : scored["auc"].get<double>()},
              {"note",
               "on the pairs that chose the best epoch and the thresholds: optimistic; "
               "measure with veriface-eval on pairs this model never saw"}}}};
      }
      auto written = (*trainer)->WriteBundle(out, spec);
      if (!written.ok()) return Fail(written.status());
      result["bundle"] = {
          {"dir", DisplayPath(out)}, {"model_id", written->model_id}, {"thresholds", written->thresholds}};
      std::cerr << "wrote " << out << " (model " << written->model_id << ")\n";
    }
    if (!result_path.empty()) {
      const absl::Status w = WriteFileAtomically(result_path, result.dump(2) + "\n");
      if (!w.ok()) return Fail(w);
    }
    return summary->finished ? EXIT_SUCCESS : 3;
  }

  const absl::Status ok = FinishConfig(raw, 1, 1, &c);
  if (!ok.ok()) return Fail(ok);
  auto fold_ids = ParseFoldList(fold_list, FoldsOf(folds.people_file, ""));
  if (!fold_ids.ok()) return Fail(fold_ids.status());
  folds.folds = *fold_ids;
  folds.base = c;
  auto result = RunFoldProtocol(folds);
  if (!result.ok()) return Fail(result.status());
  (*result)["command"] = "folds";
  if (!result_path.empty()) {
    const absl::Status w = WriteFileAtomically(result_path, result->dump(2) + "\n");
    if (!w.ok()) return Fail(w);
  }
  std::cout << result->dump(2) << "\n";
  return EXIT_SUCCESS;
}
