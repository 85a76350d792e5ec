#pragma once
// The training loop of veriface-train: a Siamese network (one backbone + head applied to every image)
// trained with the triplet loss over P x K batches, validated on held-out pairs every epoch, with
// checkpoints that resume bit-for-bit, a CSV log, PNG curves and a model bundle at the end.
//
// Two paths:
//   * images: chips (cached, augmented on loader threads) -> backbone -> head; every from-scratch
//     backbone, and face-resnet when fine-tuned;
//   * frozen features: face-resnet frozen, its features of several views of each face computed once and
//     cached; only the head trains, which takes seconds per epoch on a CPU.
//
// Leakage is impossible by construction: everyone in the validation pairs (and any other held-out pairs
// file) is removed from the training people before anything else happens.

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/metrics.h"
#include "core/eval/pairs.h"
#include "core/model/face_model.h"
#include "trainer/training/augment.h"
#include "trainer/training/face_cache.h"
#include "trainer/training/face_dataset.h"
#include "trainer/training/pk_sampler.h"
#include "trainer/training/triplet_loss.h"
#include "trainer/training/whitening.h"

namespace veriface {

struct TrainerConfig {
  // ---- data ----
  std::string data_dir;                     // a folder in LFW layout
  std::string train_people;                 // an LFW people file; empty: everyone in data_dir
  std::vector<int> train_folds;             // 0-based folds of train_people; empty: all
  std::string val_pairs;                    // validated on every epoch; empty: no validation
  std::vector<int> val_folds;               // 0-based folds of val_pairs; empty: all
  std::vector<std::string> held_out_pairs;  // more pairs files whose people must not train
  std::set<std::string> held_out_people;    // and these people (e.g. a test fold's)

  // ---- model ----
  std::string source_bundle;  // detector, and face-resnet's pretrained weights
  // "face-resnet" (the source's pretrained dlib ResNet), "source" (the source bundle's own network or
  // networks, always frozen: over a fusion bundle this trains its fusion head), or a from-scratch one.
  std::string backbone = "face-resnet";
  nlohmann::json backbone_params = nlohmann::json::object();
  bool freeze_backbone = true;  // face-resnet only: train the head over cached features
  std::string head = "dense";
  nlohmann::json head_params = nlohmann::json::object();
  int feature_views = 6;  // frozen path: views per training face (plain, mirror, jittered ...)
  // How the head starts. "default": its own initialisation (a residual head starts as the identity).
  // "whiten" (frozen path, linear dense head): centred and within-class whitened on the training
  // people's features in closed form (trainer/training/whitening.h); the epochs then fine-tune it, and 0 epochs
  // keeps the closed-form map as it is.
  std::string head_init = "default";
  WhiteningOptions whitening;

  // ---- objective and sampling ----
  TripletLossOptions loss;
  PkSamplerOptions sampler;
  AugmentOptions augment;

  // ---- optimisation ----
  std::string optimizer = "adam";  // "adam", "adamw" or "sgd" (momentum, Nesterov)
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;
  std::string schedule = "cosine";  // "cosine" (to min_lr_fraction), "step" or "constant"
  double min_lr_fraction = 0.01;
  int step_every = 10;  // "step": multiply by step_gamma every this many epochs
  double step_gamma = 0.1;
  double warmup_epochs = 0;     // linear warm-up from 0
  double clip_grad_norm = 5.0;  // 0: no clipping
  int epochs = 10;
  uint64_t seed = 1;

  // ---- when to stop early ----
  double time_budget_s = 0;  // 0: none; else no epoch starts that would end past it (counted across resumes)
  int stop_after = 0;        // 0: none; else stop after this many epochs in this run (resume later)

  // ---- runtime ----
  std::string device = "auto";
  int threads = 0;         // LibTorch intra-op threads; 0: one per core
  int loader_threads = 2;  // batch building (image path) and the face cache
  int eval_batch = 64;
  std::string work_dir;              // checkpoint.pt, best.pt, log.csv, curves; required
  std::string cache_dir;             // faces, chips, features; empty: no disk cache
  bool resume = false;               // continue from work_dir/checkpoint.pt
  std::ostream* progress = nullptr;  // progress bars and messages, or silence

  // Checks values and combinations; the message names the field.
  absl::Status Validate() const;
  // Everything that decides the training's outcome (not the runtime knobs): stored in checkpoints so
  // that a resume with different settings is refused, and written into the bundle's provenance. Paths
  // as DisplayPath shows them, so that no bundle names the machine that trained it.
  nlohmann::json OutcomeJson() const;
};

struct EpochRecord {
  int epoch = 0;  // 1-based
  int64_t steps = 0;
  double loss = 0;             // mean over steps
  double active_fraction = 0;  // mean over steps
  double lr = 0;               // at the end of the epoch
  double seconds = 0;
  double images_per_second = 0;
  bool validated = false;
  double val_accuracy = 0;  // at the best threshold on the validation pairs
  double val_threshold = 0;
  double val_auc = 0;
  double val_cv_accuracy = 0;  // 10-fold cross-validated (threshold chosen on the other folds)
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EpochRecord, epoch, steps, loss, active_fraction, lr, seconds, images_per_second,
                                   validated, val_accuracy, val_threshold, val_auc, val_cv_accuracy)

struct TrainSummary {
  std::vector<EpochRecord> history;
  int best_epoch = 0;     // 1-based; the last epoch when there is no validation
  bool finished = false;  // false: stopped by stop_after, resume to continue
  std::string stop_reason;
  int64_t train_people = 0, train_images = 0, anchor_people = 0, no_face_images = 0, held_out_people = 0;
  int64_t val_pairs = 0, val_no_face_images = 0;
};

class Trainer {
 public:
  // Loads the source bundle and builds the networks (nothing is read from the data yet).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const TrainerConfig& config);
  ~Trainer();

  // Prepares the data (faces, chips or features, from the cache when present), then trains until the
  // last epoch, the time budget or stop_after; resumes first when config.resume. On return the
  // networks hold the best epoch's weights (the last epoch's when there is no validation).
  absl::StatusOr<TrainSummary> Run();

  // Unit-length embeddings [N, D] (CPU) of images, by the current networks with the test-time flip,
  // exactly as FaceModel::Embed would compute them from the written bundle.
  absl::StatusOr<torch::Tensor> EmbedImages(const std::vector<std::string>& paths);

  // Cosine scores of the pairs (paths resolved under data_dir) by the current networks.
  absl::StatusOr<VerificationScores> ScorePairs(const PairsFile& pairs, const std::vector<int>& folds = {});

  // The same for the source bundle as it is (its own backbone and head, with the test-time flip): the
  // baseline a trained model has to beat, measured on the same faces.
  absl::StatusOr<VerificationScores> ScorePairsWithSource(const PairsFile& pairs, const std::vector<int>& folds = {});

  // Writes a bundle: the source detector, the backbone and head as they are now, and `spec`'s
  // thresholds / calibration / accuracy (trainer/calibration; the architecture and test-time fields are
  // filled in here; provenance gets the training configuration and data added).
  absl::StatusOr<ModelSpec> WriteBundle(const std::string& dir, ModelSpec spec) const;

  // The test-time setting of the trainer's embeddings and scores, and of the bundles it writes: each face's
  // aligned chip averaged with its mirror image (a CalibrationSource's test_time).
  static constexpr char kTestTime[] = "flip";

  const TrainerConfig& config() const { return config_; }
  const std::shared_ptr<Backbone>& backbone() const { return backbone_; }
  const std::shared_ptr<Head>& head() const { return head_; }
  const TrainSummary& summary() const { return summary_; }

 private:
  struct Data;
  explicit Trainer(TrainerConfig config);

  absl::Status Build();
  absl::Status PrepareData();
  absl::Status InitialiseHead();
  absl::Status RunEpoch(int epoch, EpochRecord* record);
  absl::StatusOr<torch::Tensor> MakeImageBatch(int epoch, int64_t step, const std::vector<int64_t>& items) const;
  torch::Tensor MakeFeatureBatch(int epoch, int64_t step, const std::vector<int64_t>& items) const;
  // Unit embeddings of prepared inputs with the test-time flip (ReduceViews over the plain and mirror
  // views): cached features [N, views >= 2, D], or chips (both ways through the backbone).
  absl::StatusOr<torch::Tensor> EmbedFeatures(const torch::Tensor& features);
  absl::StatusOr<torch::Tensor> EmbedChips(const std::vector<cv::Mat>& chips);
  absl::StatusOr<torch::Tensor> EmbedBatches(
      int64_t n, bool features, const std::function<absl::StatusOr<torch::Tensor>(int64_t, int64_t)>& batch);
  absl::Status Validate(EpochRecord* record);
  double LearningRate(int epoch, int64_t step, int64_t steps) const;
  std::vector<torch::Tensor> TrainableParameters() const;
  // Views cached per image: as many as training uses on the frozen path, since every LFW image that is
  // a test image in one fold trains in the others (an entry with fewer views is computed again).
  int CachedViews() const { return frozen_features_ ? config_.feature_views : 2; }

  absl::Status SaveCheckpoint(const std::string& path, int epochs_done, bool with_optimizer) const;
  absl::Status LoadCheckpoint(const std::string& path, bool with_optimizer, int* epochs_done);
  absl::Status WriteLogAndCurves() const;

  TrainerConfig config_;
  torch::Device device_;
  std::shared_ptr<const FaceModel> source_;
  std::unique_ptr<FaceCache> cache_;
  std::shared_ptr<Backbone> backbone_;
  std::shared_ptr<Head> head_;
  bool frozen_features_ = false;  // the frozen-backbone path
  // The networks whose features the head takes, and each one's width: the source's for --backbone source
  // (several for a fusion), else backbone_ alone.
  std::vector<std::shared_ptr<Backbone>> members_;
  std::vector<int64_t> member_dims_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<Data> data_;
  TrainSummary summary_;
  double best_accuracy_ = -1;
  double elapsed_before_s_ = 0;  // training time of earlier sessions (resume)
};

}  // namespace veriface
