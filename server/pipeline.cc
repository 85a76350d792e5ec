#include "server/pipeline.h"

#include <torch/version.h>

#include <exception>
#include <future>
#include <opencv2/core.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/batch/dynamic_batcher.h"
#include "core/common/device.h"
#include "core/common/status_macros.h"
#include "core/model/face_model.h"

namespace veriface::server {
namespace {

using Clock = std::chrono::steady_clock;

using Faces = std::vector<FaceDetection>;
using Embedding = std::vector<float>;
using DetectBatcher = DynamicBatcher<DetectRequest, Faces>;
using EmbedBatcher = DynamicBatcher<cv::Mat, Embedding>;

// How often a waiting call looks at its cancellation flag.
constexpr auto kPollInterval = std::chrono::milliseconds(20);

DynamicBatcherOptions StageOptions(const std::string& name, const BatchingConfig& c) {
  DynamicBatcherOptions o;
  o.name = name;
  o.max_batch = c.max_batch;
  o.max_queue_delay = std::chrono::microseconds(c.max_queue_delay_us);
  o.max_queue_size = c.max_queue_size;
  o.workers = c.workers;
  return o;
}

// The message of an exception a model call let out (core promises none, but a bug must not crash).
std::string Describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

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

}  // namespace

std::string TorchVersion() { return TORCH_VERSION; }

struct Pipeline::Impl {
  std::unique_ptr<DetectBatcher> detect;
  std::unique_ptr<EmbedBatcher> embed;
  // Also told of CheckCapacity's refusals, which never reach the batcher.
  std::shared_ptr<BatchObserver> observer;

  // MTCNN's pyramid depends on each image's size, so a detection batch runs its images one by one; the
  // batcher still bounds the queue, drops expired work and keeps the worker count fixed.
  static auto DetectBatch(const FaceModel& model) {
    return [&model](std::vector<DetectRequest>& jobs) {
      std::vector<absl::StatusOr<Faces>> out;
      out.reserve(jobs.size());
      for (DetectRequest& job : jobs) {
        try {
          out.push_back(model.Detect(job.rgb, job.options));
        } catch (...) {
          out.push_back(
              absl::InternalError(absl::StrCat("face detection failed: ", Describe(std::current_exception()))));
        }
      }
      return out;
    };
  }

  static auto EmbedBatch(const FaceModel& model) {
    return [&model](std::vector<cv::Mat>& chips) {
      std::vector<absl::StatusOr<Embedding>> out;
      out.reserve(chips.size());
      try {
        const auto embeddings = model.Embed(chips);
        const int64_t dim = embeddings.size(1);
        const float* data = embeddings.data_ptr<float>();
        for (size_t i = 0; i < chips.size(); ++i) {
          const float* row = data + static_cast<int64_t>(i) * dim;
          out.emplace_back(Embedding(row, row + dim));
        }
      } catch (...) {
        const std::string message = absl::StrCat("face embedding failed: ", Describe(std::current_exception()));
        out.clear();
        for (size_t i = 0; i < chips.size(); ++i) out.push_back(absl::InternalError(message));
      }
      return out;
    };
  }
};

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Load(const ServerConfig& config,
                                                         std::shared_ptr<BatchObserver> observer) {
  VF_ASSIGN_OR_RETURN(const torch::Device device, ParseDevice(config.device));
  SetTorchThreads(config.torch_threads);
  auto model = FaceModel::Load(config.model_dir, device);
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat("cannot load the model bundle '", config.model_dir,
                                                            "': ", model.status().message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->observer = observer;
  const FaceModel& m = **model;
  VF_ASSIGN_OR_RETURN(impl->detect,
                      DetectBatcher::Create(StageOptions(kDetectStage, config.detect), Impl::DetectBatch(m), observer));
  VF_ASSIGN_OR_RETURN(impl->embed,
                      EmbedBatcher::Create(StageOptions(kEmbedStage, config.embed), Impl::EmbedBatch(m), observer));
  return std::unique_ptr<Pipeline>(new Pipeline(*std::move(model), std::move(impl)));
}

Pipeline::Pipeline(std::shared_ptr<const FaceModel> model, std::unique_ptr<Impl> impl)
    : model_(std::move(model)), impl_(std::move(impl)) {}

Pipeline::~Pipeline() { Shutdown(); }

const ModelSpec& Pipeline::spec() const { return model_->spec(); }

std::string Pipeline::device() const { return model_->device().str(); }

void Pipeline::Shutdown() {
  impl_->detect->Shutdown();
  impl_->embed->Shutdown();
}

absl::Status Pipeline::CheckCapacity() const {
  const auto& options = impl_->detect->options();
  const int64_t depth = impl_->detect->queue_depth();
  if (depth >= options.max_queue_size) {
    // Counted as the queue_full drop it stands in for, so that saturation shows in
    // veriface_batch_dropped_total whichever check refused the call.
    if (impl_->observer != nullptr) impl_->observer->OnDropped(options.name, DropReason::kQueueFull);
    return absl::ResourceExhaustedError(
        absl::StrCat("batcher '", options.name, "' queue is full (", depth, " items waiting); retry with back-off"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Faces>> Pipeline::Detect(const std::vector<DetectRequest>& images,
                                                    const CallBudget& budget) {
  std::vector<std::future<absl::StatusOr<Faces>>> futures;
  futures.reserve(images.size());
  for (const DetectRequest& image : images) {
    futures.push_back(impl_->detect->Submit(image, budget.deadline, budget.cancelled));
  }
  return AwaitAll(futures, budget, "face detection");
}

absl::StatusOr<std::vector<Embedding>> Pipeline::Embed(const std::vector<const cv::Mat*>& images,
                                                       const std::vector<FaceDetection>& faces,
                                                       const CallBudget& budget) {
  std::vector<std::future<absl::StatusOr<Embedding>>> futures;
  futures.reserve(faces.size());
  for (size_t i = 0; i < faces.size(); ++i) {
    // The bundle's test-time crops (stacked), as its thresholds were calibrated with.
    cv::Mat chip = model_->Cut(*images[i], faces[i]);
    futures.push_back(impl_->embed->Submit(std::move(chip), budget.deadline, budget.cancelled));
  }
  return AwaitAll(futures, budget, "face embedding");
}

}  // namespace veriface::server
