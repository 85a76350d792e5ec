#include "trainer/training/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/common/device.h"
#include "core/common/file_util.h"
#include "core/common/guarded.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/embed/dense_head.h"
#include "core/embed/embedder.h"
#include "core/embed/view_reduction.h"
#include "core/progress/progress.h"
#include "trainer/bundle/bundle_writer.h"
#include "trainer/plot/chart.h"
#include "trainer/training/batch_prefetcher.h"
#include "trainer/training/pair_scoring.h"

namespace veriface {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kCheckpointFormat = 1;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

torch::Tensor Normalize(const torch::Tensor& x) {
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

// The plain and the mirrored view of each face, [N, 2, D] of cached features [N, views, D]: what the
// trainer's embeddings average, as the bundles it writes do at test time (flip_average, no crops).
static_assert(kMirrorView == kPlainView + 1, "FlipViews takes the two views as one slice");
torch::Tensor FlipViews(const torch::Tensor& features) { return features.slice(1, kPlainView, kMirrorView + 1); }

json MiningJson(const TripletLossOptions& o) {
  return {{"mining", MiningName(o.mining)}, {"margin", o.margin}, {"distance", TripletDistanceName(o.distance)}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Configuration

absl::Status TrainerConfig::Validate() const {
  const auto bad = [](const std::string& why) { return absl::InvalidArgumentError(why); };
  if (data_dir.empty()) return bad("no data folder given (--data)");
  if (source_bundle.empty()) return bad("no source bundle given (--source-model)");
  if (work_dir.empty()) return bad("no work folder given (--work-dir)");
  if (head_init != "default" && head_init != "whiten") {
    return bad(absl::StrCat("head init '", head_init, "' is not 'default' or 'whiten'"));
  }
  const bool pretrained = backbone == "face-resnet" || backbone == "source";
  if (head_init == "whiten" && !(pretrained && freeze_backbone)) {
    return bad("head init 'whiten' needs a frozen pretrained backbone (its features are fitted once)");
  }
  // A closed-form head needs no epoch; every other head does.
  const int min_epochs = head_init == "whiten" ? 0 : 1;
  if (epochs < min_epochs) return bad(absl::StrCat("epochs must be >= ", min_epochs, ", got ", epochs));
  if (!(lr > 0)) return bad(absl::StrCat("learning rate must be > 0, got ", lr));
  if (weight_decay < 0) return bad(absl::StrCat("weight decay must be >= 0, got ", weight_decay));
  if (optimizer != "adam" && optimizer != "adamw" && optimizer != "sgd") {
    return bad(absl::StrCat("optimizer '", optimizer, "' is not 'adam', 'adamw' or 'sgd'"));
  }
  if (schedule != "cosine" && schedule != "step" && schedule != "constant") {
    return bad(absl::StrCat("schedule '", schedule, "' is not 'cosine', 'step' or 'constant'"));
  }
  if (step_every < 1) return bad(absl::StrCat("step schedule: every must be >= 1, got ", step_every));
  if (warmup_epochs < 0 || (warmup_epochs > 0 && warmup_epochs >= epochs)) {
    return bad(absl::StrCat("warm-up epochs must be in [0, epochs), got ", warmup_epochs));
  }
  if (clip_grad_norm < 0) return bad(absl::StrCat("gradient clipping norm must be >= 0, got ", clip_grad_norm));
  if (freeze_backbone && !pretrained) {
    return bad(absl::StrCat("only the pretrained 'face-resnet' or 'source' backbones can be frozen; '", backbone,
                            "' trains from scratch (drop --freeze-backbone)"));
  }
  if (backbone == "source" && !freeze_backbone) return bad("the 'source' backbone is always frozen");
  if (feature_views < 2 || feature_views > 64) {
    return bad(absl::StrCat("feature views must be in 2..64, got ", feature_views));
  }
  if (loader_threads < 0 || eval_batch < 1) return bad("loader threads must be >= 0 and the eval batch >= 1");
  if (time_budget_s < 0 || stop_after < 0) return bad("time budget and stop-after must be >= 0");
  return absl::OkStatus();
}

json TrainerConfig::OutcomeJson() const {
  const auto fold_list = [](const std::vector<int>& f) {
    json j = json::array();
    for (int x : f) j.push_back(x + 1);
    return j;
  };
  std::vector<std::string> held_out;
  for (const std::string& p : held_out_pairs) held_out.push_back(DisplayPath(p));
  return {
      {"data_dir", DisplayPath(data_dir)},
      {"train_people", DisplayPath(train_people)},
      {"train_folds", fold_list(train_folds)},
      {"val_pairs", DisplayPath(val_pairs)},
      {"val_folds", fold_list(val_folds)},
      {"held_out_pairs", held_out},
      {"held_out_people",
       {{"count", held_out_people.size()}, {"sha256", Sha256Hex(absl::StrJoin(held_out_people, "\n")).substr(0, 16)}}},
      {"backbone", backbone},
      {"backbone_params", backbone_params},
      {"freeze_backbone", freeze_backbone},
      {"head", head},
      {"head_params", head_params},
      {"feature_views", feature_views},
      {"head_init", head_init},
      {"whitening", head_init == "whiten" ? json{{"shrinkage", whitening.shrinkage},
                                                 {"power", whitening.power},
                                                 {"output_dim", whitening.output_dim},
                                                 {"centre", whitening.centre}}
                                          : json(nullptr)},
      {"loss", MiningJson(loss)},
      {"sampler",
       {{"people_per_batch", sampler.people_per_batch},
        {"images_per_person", sampler.images_per_person},
        {"repeat_to_k", sampler.repeat_to_k},
        {"extra_negatives", sampler.extra_negatives},
        {"batches_per_epoch", sampler.batches_per_epoch}}},
      {"augment",
       {{"enabled", augment.enabled},
        {"flip_probability", augment.flip_probability},
        {"max_shift", augment.max_shift},
        {"max_scale", augment.max_scale},
        {"max_rotation_deg", augment.max_rotation_deg},
        {"brightness", augment.brightness},
        {"contrast", augment.contrast},
        {"saturation", augment.saturation}}},
      {"optimizer", optimizer},
      {"lr", lr},
      {"weight_decay", weight_decay},
      {"momentum", momentum},
      {"schedule", schedule},
      {"min_lr_fraction", min_lr_fraction},
      {"step_every", step_every},
      {"step_gamma", step_gamma},
      {"warmup_epochs", warmup_epochs},
      {"clip_grad_norm", clip_grad_norm},
      {"epochs", epochs},
      {"seed", seed}};
}

// ---------------------------------------------------------------------------------------------------
// Data

struct Trainer::Data {
  TrainingSet train;  // images with a face only
  std::optional<PkSampler> sampler;
  std::vector<cv::Mat> train_chips;  // image path
  torch::Tensor train_features;      // frozen path: [N, views, D]
  ResolvedPairs val;
  std::vector<cv::Mat> val_chips;  // image path
  torch::Tensor val_features;      // frozen path: [M, 2, D] (plain, mirror)
};

Trainer::Trainer(TrainerConfig config) : config_(std::move(config)), device_(torch::kCPU) {}
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainerConfig& config) {
  VF_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Trainer> t(new Trainer(config));
  VF_ASSIGN_OR_RETURN(t->device_, ParseDevice(config.device));
  SetTorchThreads(config.threads);
  VF_RETURN_IF_ERROR(Guarded("building the networks", [&] { return t->Build(); }));
  return t;
}

absl::Status Trainer::Build() {
  VF_ASSIGN_OR_RETURN(source_, FaceModel::Load(config_.source_bundle, device_));
  if (source_->members() > 1 && config_.backbone != "source") {
    return absl::InvalidArgumentError(absl::StrCat("the source bundle '", config_.source_bundle, "' fuses ",
                                                   source_->members(),
                                                   " networks; train its fusion head with --backbone source"));
  }
  FaceCacheOptions cache_options;
  cache_options.dir = config_.cache_dir;
  cache_options.detector = source_->spec().detector_defaults;
  cache_options.threads = std::max(1, config_.loader_threads);
  cache_options.progress = config_.progress;
  cache_ = std::make_unique<FaceCache>(source_, cache_options);

  torch::manual_seed(config_.seed);
  frozen_features_ = (config_.backbone == "face-resnet" || config_.backbone == "source") && config_.freeze_backbone;
  if (config_.backbone == "source") {
    members_ = source_->embedder().backbones();
    backbone_ = members_.front();
  } else if (config_.backbone == "face-resnet") {
    const auto& pretrained = source_->embedder().backbone();
    if (pretrained->arch() != "face-resnet") {
      return absl::InvalidArgumentError(
          absl::StrCat("backbone 'face-resnet' needs its pretrained weights, but the "
                       "source bundle's backbone is '",
                       pretrained->arch(), "'"));
    }
    if (frozen_features_) {
      backbone_ = pretrained;
    } else {
      VF_ASSIGN_OR_RETURN(backbone_, MakeBackbone("face-resnet", json::object()));
      torch::NoGradGuard no_grad;
      auto source_params = pretrained->named_parameters();
      for (auto& p : backbone_->named_parameters()) p.value().copy_(source_params[p.key()]);
      auto source_buffers = pretrained->named_buffers();
      for (auto& b : backbone_->named_buffers()) b.value().copy_(source_buffers[b.key()]);
    }
  } else {
    VF_ASSIGN_OR_RETURN(backbone_, MakeBackbone(config_.backbone, config_.backbone_params));
  }
  if (members_.empty()) members_ = {backbone_};
  int64_t features = 0;
  for (const auto& m : members_) {
    member_dims_.push_back(m->feature_dim());
    features += m->feature_dim();
  }
  VF_ASSIGN_OR_RETURN(head_, MakeHead(config_.head, features, config_.head_params));
  backbone_->to(device_);
  head_->to(device_);
  if (frozen_features_) {
    for (auto& p : backbone_->parameters()) p.set_requires_grad(false);
  }

  const auto params = TrainableParameters();
  if (params.empty()) return absl::InvalidArgumentError(absl::StrCat("head '", config_.head, "' has nothing to train"));
  if (config_.optimizer == "sgd") {
    optimizer_ = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(config_.lr)
                                                                 .momentum(config_.momentum)
                                                                 .nesterov(config_.momentum > 0)
                                                                 .weight_decay(config_.weight_decay));
  } else if (config_.optimizer == "adamw") {
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(config_.lr).weight_decay(config_.weight_decay));
  } else {
    optimizer_ = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(config_.lr).weight_decay(config_.weight_decay));
  }
  return absl::OkStatus();
}

std::vector<torch::Tensor> Trainer::TrainableParameters() const {
  std::vector<torch::Tensor> out;
  if (!frozen_features_) {
    for (auto& p : backbone_->parameters()) out.push_back(p);
  }
  for (auto& p : head_->parameters()) out.push_back(p);
  return out;
}

absl::Status Trainer::PrepareData() {
  auto data = std::make_unique<Data>();
  std::ostream* log = config_.progress;
  VF_ASSIGN_OR_RETURN(const auto folder, ScanFaceFolder(config_.data_dir));

  std::optional<std::set<std::string>> allowed;
  if (!config_.train_people.empty()) {
    VF_ASSIGN_OR_RETURN(const PeopleFile people, ReadPeopleFile(config_.train_people));
    VF_ASSIGN_OR_RETURN(allowed, people.People(config_.train_folds));
  }
  // Held out: everyone in the validation pairs and in any other held-out pairs file.
  std::set<std::string> held_out;
  if (!config_.val_pairs.empty()) {
    VF_ASSIGN_OR_RETURN(const PairsFile val, ReadPairsFile(config_.val_pairs));
    for (int f : config_.val_folds) {
      if (f < 0 || f >= val.num_folds) {
        return absl::InvalidArgumentError(absl::StrCat("validation fold ", f + 1, " asked for, but '",
                                                       config_.val_pairs, "' has ", val.num_folds, " fold(s)"));
      }
    }
    held_out = PeopleInPairs(val, config_.val_folds);
    VF_ASSIGN_OR_RETURN(data->val, ResolvePairs(val, config_.val_folds, config_.data_dir));
  }
  held_out.insert(config_.held_out_people.begin(), config_.held_out_people.end());
  for (const auto& file : config_.held_out_pairs) {
    VF_ASSIGN_OR_RETURN(const PairsFile extra, ReadPairsFile(file));
    const auto people = PeopleInPairs(extra);
    held_out.insert(people.begin(), people.end());
  }
  VF_ASSIGN_OR_RETURN(TrainingSet all, BuildTrainingSet(folder, allowed, held_out));

  // One detection pass over every image the run needs.
  std::vector<std::string> paths = all.paths;
  paths.insert(paths.end(), data->val.images.begin(), data->val.images.end());
  VF_ASSIGN_OR_RETURN(const auto faces, cache_->Faces(paths));
  std::vector<FaceRecord> train_faces, val_faces(faces.begin() + static_cast<int64_t>(all.paths.size()), faces.end());
  TrainingSet& train = data->train;
  train.people = all.people;
  train.held_out_people = all.held_out_people;
  train.missing_people = all.missing_people;
  for (size_t i = 0; i < all.paths.size(); ++i) {
    if (!faces[i].found) {
      ++summary_.no_face_images;  // a centred crop is no training example
      continue;
    }
    train.paths.push_back(all.paths[i]);
    train.labels.push_back(all.labels[i]);
    train_faces.push_back(faces[i]);
  }
  for (const auto& f : val_faces) summary_.val_no_face_images += f.found ? 0 : 1;
  if (train.paths.empty()) return absl::InvalidArgumentError("no face was found in any training image");
  VF_ASSIGN_OR_RETURN(auto sampler, PkSampler::Create(train.labels, config_.sampler));
  data->sampler.emplace(std::move(sampler));

  summary_.train_people = static_cast<int64_t>(std::set<int>(train.labels.begin(), train.labels.end()).size());
  summary_.train_images = static_cast<int64_t>(train.paths.size());
  summary_.anchor_people = data->sampler->anchor_people();
  summary_.held_out_people = train.held_out_people;
  summary_.val_pairs = static_cast<int64_t>(data->val.pairs.size());
  if (log) {
    *log << absl::StrFormat(
        "training on %d images of %d people (%d with two or more images); %d people held out; %d images without "
        "a face skipped; %d validation pairs (%d images without a face, centred crops used)\n",
        summary_.train_images, summary_.train_people, summary_.anchor_people, summary_.held_out_people,
        summary_.no_face_images, summary_.val_pairs, summary_.val_no_face_images);
  }

  if (frozen_features_) {
    VF_ASSIGN_OR_RETURN(data->train_features, cache_->Features(train.paths, train_faces, config_.feature_views));
    if (!data->val.images.empty()) {
      VF_ASSIGN_OR_RETURN(data->val_features, cache_->Features(data->val.images, val_faces, CachedViews()));
    }
  } else {
    const int size = static_cast<int>(backbone_->input_size());
    VF_ASSIGN_OR_RETURN(data->train_chips, cache_->Chips(train.paths, train_faces, size));
    if (!data->val.images.empty()) {
      VF_ASSIGN_OR_RETURN(data->val_chips, cache_->Chips(data->val.images, val_faces, size));
    }
  }
  data_ = std::move(data);
  return absl::OkStatus();
}

absl::Status Trainer::InitialiseHead() {
  if (config_.head_init != "whiten") return absl::OkStatus();
  auto dense = std::dynamic_pointer_cast<DenseHead>(head_);
  if (dense == nullptr) return absl::InvalidArgumentError("head init 'whiten' needs the 'dense' head");
  // Fitted on the features the head sees at test time (the flip average), one row per image.
  const auto& f = data_->train_features;
  const auto test_time = NormalizeMembers(FlipViews(f).mean(1), member_dims_);
  VF_ASSIGN_OR_RETURN(const AffineMap map, FitWhitening(test_time, data_->train.labels, config_.whitening));
  VF_RETURN_IF_ERROR(dense->SetAffine(map.weight, map.bias));
  if (config_.progress) {
    *config_.progress << absl::StrFormat(
        "head: centred and whitened on %d images (within-class covariance of %d people; shrinkage %g, power %g)\n",
        map.samples, map.people, config_.whitening.shrinkage, config_.whitening.power);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Batches and embeddings

absl::StatusOr<torch::Tensor> Trainer::MakeImageBatch(int epoch, int64_t step,
                                                      const std::vector<int64_t>& items) const {
  std::vector<cv::Mat> chips;
  chips.reserve(items.size());
  for (size_t j = 0; j < items.size(); ++j) {
    std::mt19937_64 rng(MixSeed(config_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(step), j));
    chips.push_back(AugmentChip(data_->train_chips[static_cast<size_t>(items[j])], config_.augment, rng));
  }
  return ChipsToTensor(chips);
}

torch::Tensor Trainer::MakeFeatureBatch(int epoch, int64_t step, const std::vector<int64_t>& items) const {
  const auto& f = data_->train_features;  // [N, V, D]
  const int64_t views = f.size(1);
  auto out = torch::empty({static_cast<int64_t>(items.size()), f.size(2)}, f.options());
  for (size_t j = 0; j < items.size(); ++j) {
    std::mt19937_64 rng(MixSeed(config_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(step), j));
    // One of the views, or (one time in views + 1) the flip average that test time uses.
    const auto v = static_cast<int64_t>(rng() % static_cast<uint64_t>(views + 1));
    const auto row = f[items[j]];
    out[static_cast<int64_t>(j)].copy_(v == views ? (row[kPlainView] + row[kMirrorView]) / 2 : row[v]);
  }
  return out;
}

absl::StatusOr<torch::Tensor> Trainer::EmbedFeatures(const torch::Tensor& features) {
  return EmbedBatches(features.size(0), true, [&](int64_t lo, int64_t hi) -> absl::StatusOr<torch::Tensor> {
    return features.slice(0, lo, hi);
  });
}

absl::StatusOr<torch::Tensor> Trainer::EmbedChips(const std::vector<cv::Mat>& chips) {
  return EmbedBatches(static_cast<int64_t>(chips.size()), false, [&](int64_t lo, int64_t hi) {
    return ChipsToTensor(std::vector<cv::Mat>(chips.begin() + lo, chips.begin() + hi));
  });
}

absl::StatusOr<torch::Tensor> Trainer::EmbedBatches(
    int64_t n, bool features, const std::function<absl::StatusOr<torch::Tensor>(int64_t, int64_t)>& batch) {
  torch::NoGradGuard no_grad;
  backbone_->eval();
  head_->eval();
  const absl::Cleanup training_again = [this] {
    backbone_->train(!frozen_features_);
    head_->train();
  };
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; i += config_.eval_batch) {
    VF_ASSIGN_OR_RETURN(torch::Tensor x, batch(i, std::min(n, i + config_.eval_batch)));
    x = x.to(device_);
    // Each face's plain and mirrored views, [n, 2, D], reduced as the server's embedder reduces them.
    torch::Tensor views;
    if (features) {
      views = FlipViews(x);
    } else {
      const int64_t n = x.size(0);
      const auto both = backbone_->forward(torch::cat({x, x.flip({3})}));
      views = torch::stack({both.slice(0, 0, n), both.slice(0, n, 2 * n)}, 1);
    }
    out.push_back(ReduceViews(views, *head_, member_dims_).to(torch::kCPU));
  }
  if (out.empty()) return torch::empty({0, head_->output_dim()});
  return torch::cat(out);
}

absl::StatusOr<torch::Tensor> Trainer::EmbedImages(const std::vector<std::string>& paths) {
  torch::Tensor result;
  VF_RETURN_IF_ERROR(Guarded("embedding images", [&]() -> absl::Status {
    VF_ASSIGN_OR_RETURN(const auto faces, cache_->Faces(paths));
    if (frozen_features_) {
      VF_ASSIGN_OR_RETURN(const auto f, cache_->Features(paths, faces, CachedViews()));
      VF_ASSIGN_OR_RETURN(result, EmbedFeatures(f));
    } else {
      VF_ASSIGN_OR_RETURN(const auto chips, cache_->Chips(paths, faces, static_cast<int>(backbone_->input_size())));
      VF_ASSIGN_OR_RETURN(result, EmbedChips(chips));
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<VerificationScores> Trainer::ScorePairs(const PairsFile& pairs, const std::vector<int>& folds) {
  VF_ASSIGN_OR_RETURN(const auto resolved, ResolvePairs(pairs, folds, config_.data_dir));
  VF_ASSIGN_OR_RETURN(const auto embeddings, EmbedImages(resolved.images));
  return CosineScores(embeddings, resolved);
}

absl::StatusOr<VerificationScores> Trainer::ScorePairsWithSource(const PairsFile& pairs,
                                                                 const std::vector<int>& folds) {
  VF_ASSIGN_OR_RETURN(const auto resolved, ResolvePairs(pairs, folds, config_.data_dir));
  VF_ASSIGN_OR_RETURN(const auto faces, cache_->Faces(resolved.images));
  // The cache's features are the source backbone's; the source head and normalisation follow, with the
  // plain and mirrored views reduced as the server's embedder does.
  VF_ASSIGN_OR_RETURN(const auto features, cache_->Features(resolved.images, faces, CachedViews()));
  torch::Tensor embeddings;
  VF_RETURN_IF_ERROR(Guarded("embedding with the source bundle", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    embeddings =
        ReduceViews(FlipViews(features).to(device_), *source_->embedder().head(), source_->embedder().member_dims())
            .to(torch::kCPU);
    return absl::OkStatus();
  }));
  return CosineScores(embeddings, resolved);
}

// ---------------------------------------------------------------------------------------------------
// The loop

double Trainer::LearningRate(int epoch, int64_t step, int64_t steps) const {
  const double t = epoch + static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, steps));
  if (config_.warmup_epochs > 0 && t < config_.warmup_epochs) {
    return config_.lr * std::max(t, 1.0 / static_cast<double>(std::max<int64_t>(1, steps))) / config_.warmup_epochs;
  }
  if (config_.schedule == "step") return config_.lr * std::pow(config_.step_gamma, std::floor(t / config_.step_every));
  if (config_.schedule == "cosine") {
    const double p = (t - config_.warmup_epochs) / (config_.epochs - config_.warmup_epochs);
    const double m = config_.min_lr_fraction;
    return config_.lr * (m + (1 - m) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, p))));
  }
  return config_.lr;
}

absl::Status Trainer::RunEpoch(int epoch, EpochRecord* record) {
  const auto batches = data_->sampler->Epoch(epoch);
  const auto steps = static_cast<int64_t>(batches.size());
  // Dropout and anything else that draws from LibTorch's generator: fixed by (seed, epoch).
  torch::manual_seed(MixSeed(config_.seed, static_cast<uint64_t>(epoch), 0x746f7263));
  backbone_->train(!frozen_features_);
  head_->train();

  BatchPrefetcher prefetch(steps, frozen_features_ ? 0 : config_.loader_threads, 2 * config_.loader_threads + 2,
                           [&](int64_t step) -> absl::StatusOr<torch::Tensor> {
                             if (frozen_features_) return MakeFeatureBatch(epoch, step, batches[step]);
                             return MakeImageBatch(epoch, step, batches[step]);
                           });
  ProgressBar bar(absl::StrFormat("epoch %d/%d", epoch + 1, config_.epochs), steps, "steps", config_.progress, "img");
  const auto start = Clock::now();
  double loss_sum = 0, active_sum = 0;
  int64_t images = 0;
  const auto params = TrainableParameters();
  for (int64_t step = 0; step < steps; ++step) {
    VF_ASSIGN_OR_RETURN(const auto inputs, prefetch.Next());
    std::vector<int64_t> labels;
    for (int64_t item : batches[step]) labels.push_back(data_->train.labels[static_cast<size_t>(item)]);
    const auto x = inputs.to(device_);
    // The frozen path's features are those of every member side by side, each scaled as ReduceViews scales it.
    const auto features = frozen_features_ ? NormalizeMembers(x, member_dims_) : backbone_->forward(x);
    const auto embeddings = Normalize(head_->forward(features));
    std::mt19937_64 rng(MixSeed(config_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(step), 0x726e64));
    VF_ASSIGN_OR_RETURN(const auto loss,
                        TripletLoss(embeddings, torch::tensor(labels, torch::kInt64), config_.loss, &rng));
    const double lr = LearningRate(epoch, step, steps);
    for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
    optimizer_->zero_grad();
    loss.loss.backward();
    if (config_.clip_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, config_.clip_grad_norm);
    optimizer_->step();

    const double l = loss.loss.item<double>();
    if (!std::isfinite(l)) {
      return absl::InternalError(
          absl::StrFormat("the loss became %f at epoch %d step %d; lower the learning rate "
                          "(now %g) or the gradient clipping norm",
                          l, epoch + 1, step + 1, lr));
    }
    loss_sum += l;
    active_sum += loss.active_fraction();
    images += static_cast<int64_t>(labels.size());
    record->lr = lr;
    const double done_epochs = epoch + static_cast<double>(step + 1) / steps;
    const double run_eta = Seconds(start) / (step + 1) * steps * (config_.epochs - done_epochs);
    bar.Update(step + 1,
               absl::StrFormat("loss %.4f active %.1f%% lr %.2g run ETA %s", loss_sum / (step + 1),
                               100 * active_sum / (step + 1), lr, FormatDuration(run_eta)),
               images);
  }
  record->epoch = epoch + 1;
  record->steps = steps;
  record->loss = steps > 0 ? loss_sum / steps : 0;
  record->active_fraction = steps > 0 ? active_sum / steps : 0;
  record->seconds = Seconds(start);
  record->images_per_second = record->seconds > 0 ? images / record->seconds : 0;
  bar.Finish(absl::StrFormat("loss %.4f active %.1f%%", record->loss, 100 * record->active_fraction));
  return absl::OkStatus();
}

absl::Status Trainer::Validate(EpochRecord* record) {
  if (data_->val.pairs.empty()) return absl::OkStatus();
  VF_ASSIGN_OR_RETURN(const auto embeddings,
                      frozen_features_ ? EmbedFeatures(data_->val_features) : EmbedChips(data_->val_chips));
  VF_ASSIGN_OR_RETURN(const auto scores, CosineScores(embeddings, data_->val));
  const auto best = scores.BestAccuracyThreshold();
  record->validated = true;
  record->val_accuracy = best.accuracy;
  record->val_threshold = best.threshold;
  record->val_auc = scores.Auc();
  // Ten interleaved folds of the validation pairs: the threshold of each chosen on the other nine.
  std::vector<int> folds;
  for (size_t i = 0; i < scores.size(); ++i) folds.push_back(static_cast<int>(i % 10));
  auto cv = CrossValidate(scores, folds);
  record->val_cv_accuracy = cv.ok() ? cv->mean_accuracy : best.accuracy;
  return absl::OkStatus();
}

absl::StatusOr<TrainSummary> Trainer::Run() {
  VF_RETURN_IF_ERROR(Guarded("training", [&]() -> absl::Status {
    std::error_code ec;
    fs::create_directories(config_.work_dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create '", config_.work_dir, "': ", ec.message()));
    const std::string checkpoint = (fs::path(config_.work_dir) / "checkpoint.pt").string();
    const std::string best = (fs::path(config_.work_dir) / "best.pt").string();
    int done = 0;
    if (fs::exists(checkpoint)) {
      if (!config_.resume) {
        return absl::FailedPreconditionError(absl::StrCat("'", checkpoint,
                                                          "' exists: pass --resume to continue that "
                                                          "run, or choose another --work-dir"));
      }
      VF_RETURN_IF_ERROR(LoadCheckpoint(checkpoint, /*with_optimizer=*/true, &done));
      if (config_.progress) *config_.progress << "resuming after epoch " << done << " of " << config_.epochs << "\n";
    }
    VF_RETURN_IF_ERROR(PrepareData());
    if (done == 0) VF_RETURN_IF_ERROR(InitialiseHead());

    const auto session_start = Clock::now();
    // Time of earlier sessions (a resumed run); elapsed_before_s_ itself grows with each epoch below and
    // would count this session's epochs twice.
    const double before_session = elapsed_before_s_;
    int run_here = 0;
    summary_.finished = true;
    for (int epoch = done; epoch < config_.epochs; ++epoch) {
      if (config_.stop_after > 0 && run_here >= config_.stop_after) {
        summary_.finished = false;
        summary_.stop_reason = absl::StrCat("stopped after ", run_here, " epoch(s) as asked; resume to continue");
        break;
      }
      const double spent = before_session + Seconds(session_start);
      const double last = summary_.history.empty() ? 0 : summary_.history.back().seconds;
      if (config_.time_budget_s > 0 && !summary_.history.empty() && spent + last > config_.time_budget_s) {
        summary_.stop_reason =
            absl::StrFormat("time budget of %s reached after %d epochs", FormatDuration(config_.time_budget_s), epoch);
        break;
      }
      EpochRecord record;
      VF_RETURN_IF_ERROR(RunEpoch(epoch, &record));
      VF_RETURN_IF_ERROR(Validate(&record));
      summary_.history.push_back(record);
      ++run_here;
      const bool improved = record.validated && record.val_accuracy > best_accuracy_;
      if (improved || !record.validated) {
        best_accuracy_ = record.val_accuracy;
        summary_.best_epoch = record.epoch;
        if (record.validated) VF_RETURN_IF_ERROR(SaveCheckpoint(best, record.epoch, /*with_optimizer=*/false));
      }
      if (config_.progress && record.validated) {
        *config_.progress << absl::StrFormat(
            "epoch %d: validation accuracy %.2f%% (threshold %.3f, 10-fold %.2f%%, AUC %.4f)%s\n", record.epoch,
            100 * record.val_accuracy, record.val_threshold, 100 * record.val_cv_accuracy, record.val_auc,
            improved ? " best so far" : "");
      }
      elapsed_before_s_ += record.seconds;
      VF_RETURN_IF_ERROR(SaveCheckpoint(checkpoint, record.epoch, /*with_optimizer=*/true));
      VF_RETURN_IF_ERROR(WriteLogAndCurves());
    }
    // The networks end with the best epoch's weights (the last epoch's without validation).
    if (summary_.finished && !data_->val.pairs.empty() && fs::exists(best)) {
      int best_epoch = 0;
      VF_RETURN_IF_ERROR(LoadCheckpoint(best, /*with_optimizer=*/false, &best_epoch));
    }
    return absl::OkStatus();
  }));
  return summary_;
}

// ---------------------------------------------------------------------------------------------------
// Checkpoints, log and curves

absl::Status Trainer::SaveCheckpoint(const std::string& path, int epochs_done, bool with_optimizer) const {
  const json meta = {{"format", kCheckpointFormat},       {"epochs_done", epochs_done},
                     {"best_epoch", summary_.best_epoch}, {"best_accuracy", best_accuracy_},
                     {"elapsed_s", elapsed_before_s_},    {"outcome", config_.OutcomeJson()},
                     {"history", summary_.history}};
  return Guarded("saving a checkpoint", [&]() -> absl::Status {
    torch::serialize::OutputArchive root, head, backbone;
    head_->save(head);
    root.write("head", head);
    if (!frozen_features_) {
      backbone_->save(backbone);
      root.write("backbone", backbone);
    }
    if (with_optimizer) {
      torch::serialize::OutputArchive opt;
      optimizer_->save(opt);
      root.write("optimizer", opt);
    }
    root.write("meta", c10::IValue(meta.dump()));
    const std::string tmp = path + ".tmp";
    root.save_to(tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot rename '", tmp, "' to '", path, "': ", ec.message()));
    return absl::OkStatus();
  });
}

absl::Status Trainer::LoadCheckpoint(const std::string& path, bool with_optimizer, int* epochs_done) {
  return Guarded("loading a checkpoint", [&]() -> absl::Status {
    torch::serialize::InputArchive root;
    root.load_from(path, device_);
    c10::IValue meta_value;
    root.read("meta", meta_value);
    const json meta = json::parse(meta_value.toStringRef());
    if (meta.value("format", 0) != kCheckpointFormat) {
      return absl::FailedPreconditionError(absl::StrCat("'", path, "' is not a checkpoint of this trainer version"));
    }
    if (with_optimizer && meta["outcome"] != config_.OutcomeJson()) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", path,
                       "' was made with other training settings; resume with the same ones or use another --work-dir. "
                       "Checkpoint: ",
                       meta["outcome"].dump(), " now: ", config_.OutcomeJson().dump()));
    }
    torch::serialize::InputArchive head;
    root.read("head", head);
    head_->load(head);
    if (!frozen_features_) {
      torch::serialize::InputArchive backbone;
      root.read("backbone", backbone);
      backbone_->load(backbone);
    }
    *epochs_done = meta.at("epochs_done").get<int>();
    if (!with_optimizer) return absl::OkStatus();
    torch::serialize::InputArchive opt;
    root.read("optimizer", opt);
    optimizer_->load(opt);
    summary_.best_epoch = meta.at("best_epoch").get<int>();
    best_accuracy_ = meta.at("best_accuracy").get<double>();
    elapsed_before_s_ = meta.at("elapsed_s").get<double>();
    summary_.history = meta.at("history").get<std::vector<EpochRecord>>();
    return absl::OkStatus();
  });
}

absl::Status Trainer::WriteLogAndCurves() const {
  std::string csv =
      "epoch,steps,loss,active_fraction,lr,seconds,images_per_second,val_accuracy,val_threshold,val_auc,"
      "val_cv_accuracy\n";
  plot::LineSeries loss, active, acc, cv;
  loss.label = "triplet loss";
  active.label = "active triplets (fraction)";
  acc.label = "best-threshold accuracy";
  cv.label = "10-fold accuracy";
  active.color = plot::PaletteColor(1);
  cv.color = plot::PaletteColor(2);
  for (const auto& r : summary_.history) {
    const std::string v = r.validated ? absl::StrFormat("%.6f,%.6f,%.6f,%.6f", r.val_accuracy, r.val_threshold,
                                                        r.val_auc, r.val_cv_accuracy)
                                      : ",,,";
    absl::StrAppend(&csv, absl::StrFormat("%d,%d,%.6f,%.6f,%.6g,%.2f,%.2f,%s\n", r.epoch, r.steps, r.loss,
                                          r.active_fraction, r.lr, r.seconds, r.images_per_second, v));
    loss.x.push_back(r.epoch);
    loss.y.push_back(r.loss);
    active.x.push_back(r.epoch);
    active.y.push_back(r.active_fraction);
    if (r.validated) {
      acc.x.push_back(r.epoch);
      acc.y.push_back(r.val_accuracy);
      cv.x.push_back(r.epoch);
      cv.y.push_back(r.val_cv_accuracy);
    }
  }
  VF_RETURN_IF_ERROR(WriteFileAtomically((fs::path(config_.work_dir) / "log.csv").string(), csv));
  plot::Chart training;
  training.title = "Training";
  training.subtitle = absl::StrCat(config_.backbone, " + ", config_.head, ", ", MiningName(config_.loss.mining),
                                   " triplets, margin ", config_.loss.margin);
  training.x.label = "epoch";
  training.y.label = "loss / fraction";
  training.y.min = 0;
  loss.markers = active.markers = acc.markers = cv.markers = summary_.history.size() < 30;
  training.lines = {loss, active};
  VF_RETURN_IF_ERROR(plot::WritePng(training, (fs::path(config_.work_dir) / "training.png").string()));
  if (!acc.x.empty()) {
    plot::Chart validation;
    validation.title = "Validation";
    validation.subtitle = absl::StrCat(summary_.val_pairs, " pairs of ", DisplayPath(config_.val_pairs));
    validation.x.label = "epoch";
    validation.y.label = "accuracy";
    validation.y.percent = true;
    validation.lines = {acc, cv};
    VF_RETURN_IF_ERROR(plot::WritePng(validation, (fs::path(config_.work_dir) / "validation.png").string()));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// The bundle

absl::StatusOr<ModelSpec> Trainer::WriteBundle(const std::string& dir, ModelSpec spec) const {
  spec.detector_defaults = source_->spec().detector_defaults;
  // kTestTime: what the scores its thresholds were calibrated on used.
  spec.flip_average = true;
  spec.crops = "none";
  if (spec.description.empty()) {
    std::string networks;
    for (const auto& m : members_) absl::StrAppend(&networks, networks.empty() ? "" : " fused with ", m->arch());
    spec.description =
        absl::StrCat("MTCNN + ", networks, frozen_features_ ? " (pretrained, frozen)" : "", " + ", head_->arch(),
                     " head trained by veriface-train (", MiningName(config_.loss.mining), " triplet loss)");
  }
  json training = {{"trainer", "veriface-train"},
                   {"objective", MiningJson(config_.loss)},
                   {"config", config_.OutcomeJson()},
                   {"data",
                    {{"people", summary_.train_people},
                     {"images", summary_.train_images},
                     {"people_with_two_or_more_images", summary_.anchor_people},
                     {"held_out_people", summary_.held_out_people},
                     {"images_without_face_skipped", summary_.no_face_images}}},
                   {"epochs_run", summary_.history.size()},
                   {"best_epoch", summary_.best_epoch},
                   {"stop_reason", summary_.stop_reason}};
  spec.provenance["training"] = training;
  spec.provenance["source_model_id"] = source_->model_id();
  spec.provenance["source_bundle"] = DisplayPath(config_.source_bundle);
  if (source_->spec().provenance.contains("source")) {
    spec.provenance["source"] = source_->spec().provenance["source"];
    spec.provenance["source_sha256"] = source_->spec().provenance.value("source_sha256", "");
  }
  ModelSpec written;
  VF_RETURN_IF_ERROR(Guarded("writing the bundle", [&]() -> absl::Status {
    // Weights are written from the CPU so that a CPU-only server can read them.
    std::shared_ptr<const FaceModel> cpu_source = source_;
    if (!device_.is_cpu()) {
      VF_ASSIGN_OR_RETURN(cpu_source, FaceModel::Load(config_.source_bundle, torch::kCPU));
    }
    for (const auto& m : members_) m->to(torch::kCPU);
    head_->to(torch::kCPU);
    auto saved = SaveBundle(dir, spec, cpu_source->detector().nets(), members_, head_);
    for (const auto& m : members_) m->to(device_);
    head_->to(device_);
    if (!saved.ok()) return saved.status();
    written = *std::move(saved);
    return absl::OkStatus();
  }));
  return written;
}

}  // namespace veriface
