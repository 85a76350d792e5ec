#include "core/serving/batched_engine.h"

#include <torch/version.h>

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/device.h"
#include "core/common/guarded.h"
#include "core/common/status_macros.h"
#include "core/model/face_model.h"

namespace veriface {
namespace {

using Clock = std::chrono::steady_clock;
using Faces = std::vector<FaceDetection>;
using DetectBatcher = DynamicBatcher<DetectRequest, Faces>;
using EmbedBatcher = DynamicBatcher<FaceViews, Embedding>;

// How often a waiting call looks at its cancellation flag.
constexpr auto kPollInterval = std::chrono::milliseconds(20);

template <typename T>
absl::StatusOr<T> Await(std::future<absl::StatusOr<T>>& future, const CallBudget& budget, const char* stage) {
  while (true) {
    const auto until = std::min(Clock::now() + kPollInterval, budget.deadline);
    if (future.wait_until(until) == std::future_status::ready) return future.get();
    if (budget.cancelled && budget.cancelled()) return absl::CancelledError("the call was cancelled");
    if (Clock::now() >= budget.deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the deadline passed while waiting for ", stage));
    }
  }
}

// Every result in order, or the first failure.
template <typename T>
absl::StatusOr<std::vector<T>> AwaitAll(std::vector<std::future<absl::StatusOr<T>>>& futures, const CallBudget& budget,
                                        const char* stage) {
  std::vector<T> out;
  out.reserve(futures.size());
  for (auto& future : futures) {
    auto result = Await(future, budget, stage);
    if (!result.ok()) return result.status();
    out.push_back(*std::move(result));
  }
  return out;
}

// MTCNN's pyramid depends on each image's size, so a detection batch runs its images one by one; the
// batcher still bounds the queue, drops expired work and keeps the worker count fixed.
DetectBatcher::BatchFn DetectBatch(const FaceModel& model) {
  return [&model](std::vector<DetectRequest>& jobs) {
    std::vector<absl::StatusOr<Faces>> out;
    out.reserve(jobs.size());
    for (DetectRequest& job : jobs) out.push_back(model.Detect(job.rgb, job.options));
    return out;
  };
}

EmbedBatcher::BatchFn EmbedBatch(const FaceModel& model) {
  return [&model](std::vector<FaceViews>& faces) {
    std::vector<absl::StatusOr<Embedding>> out;
    out.reserve(faces.size());
    auto embeddings = model.EmbedRows(faces);
    if (!embeddings.ok()) {
      out.assign(faces.size(), embeddings.status());
      return out;
    }
    for (Embedding& row : *embeddings) out.emplace_back(std::move(row));
    return out;
  };
}

}  // namespace

std::string TorchVersion() { return TORCH_VERSION; }

struct BatchedEngine::Stages {
  std::unique_ptr<DetectBatcher> detect;
  std::unique_ptr<EmbedBatcher> embed;
  // Also told of CheckCapacity's refusals, which never reach the batcher.
  std::shared_ptr<BatchObserver> observer;
};

absl::StatusOr<std::unique_ptr<BatchedEngine>> BatchedEngine::Load(const ModelOptions& model,
                                                                   BatchedEngineOptions options,
                                                                   std::shared_ptr<BatchObserver> observer) {
  VF_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(model.device));
  SetTorchThreads(model.torch_threads);
  auto loaded = FaceModel::Load(model.bundle_dir, device);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(), absl::StrCat("cannot load the model bundle '", model.bundle_dir,
                                                             "': ", loaded.status().message()));
  }
  return Create(*std::move(loaded), std::move(options), std::move(observer));
}

absl::StatusOr<std::unique_ptr<BatchedEngine>> BatchedEngine::Create(std::shared_ptr<const FaceModel> model,
                                                                     BatchedEngineOptions options,
                                                                     std::shared_ptr<BatchObserver> observer) {
  if (model == nullptr) return absl::InvalidArgumentError("BatchedEngine needs a model");
  options.detect.name = kDetectStage;
  options.embed.name = kEmbedStage;
  auto stages = std::make_unique<Stages>();
  stages->observer = observer;
  VF_ASSIGN_OR_RETURN(stages->detect, DetectBatcher::Create(options.detect, DetectBatch(*model), observer));
  VF_ASSIGN_OR_RETURN(stages->embed, EmbedBatcher::Create(options.embed, EmbedBatch(*model), observer));
  return std::unique_ptr<BatchedEngine>(new BatchedEngine(std::move(model), std::move(options), std::move(stages)));
}

BatchedEngine::BatchedEngine(std::shared_ptr<const FaceModel> model, BatchedEngineOptions options,
                             std::unique_ptr<Stages> stages)
    : model_(std::move(model)), options_(std::move(options)), stages_(std::move(stages)) {}

BatchedEngine::~BatchedEngine() { Shutdown(); }

const ModelSpec& BatchedEngine::spec() const { return model_->spec(); }

std::string BatchedEngine::device() const { return model_->device().str(); }

void BatchedEngine::Shutdown() {
  stages_->detect->Shutdown();
  stages_->embed->Shutdown();
}

absl::Status BatchedEngine::CheckCapacity() const {
  const auto& options = stages_->detect->options();
  const int64_t depth = stages_->detect->queue_depth();
  if (depth >= options.max_queue_size) {
    // Counted as the queue_full drop it stands in for, so that saturation shows in
    // veriface_batch_dropped_total whichever check refused the call.
    if (stages_->observer != nullptr) stages_->observer->OnDropped(options.name, DropReason::kQueueFull);
    return absl::ResourceExhaustedError(
        absl::StrCat("batcher '", options.name, "' queue is full (", depth, " items waiting); retry with back-off"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Faces>> BatchedEngine::Detect(const std::vector<DetectRequest>& images,
                                                         const CallBudget& budget) {
  std::vector<std::future<absl::StatusOr<Faces>>> futures;
  futures.reserve(images.size());
  for (const DetectRequest& image : images) {
    futures.push_back(stages_->detect->Submit(image, budget.deadline, budget.cancelled));
  }
  return AwaitAll(futures, budget, "face detection");
}

absl::StatusOr<std::vector<Embedding>> BatchedEngine::Embed(const std::vector<FaceToEmbed>& faces,
                                                            const CallBudget& budget) {
  std::vector<std::future<absl::StatusOr<Embedding>>> futures;
  futures.reserve(faces.size());
  for (const FaceToEmbed& face : faces) {
    if (face.rgb == nullptr) return absl::InvalidArgumentError("a face to embed has no image");
    // The bundle's test-time views, as its thresholds were calibrated with.
    VF_ASSIGN_OR_RETURN(FaceViews views, Guarded("cutting the face's views", [&]() -> absl::StatusOr<FaceViews> {
                          return model_->Cut(*face.rgb, face.face);
                        }));
    futures.push_back(stages_->embed->Submit(std::move(views), budget.deadline, budget.cancelled));
  }
  return AwaitAll(futures, budget, "face embedding");
}

}  // namespace veriface
