#pragma once
// The FaceEngine that serves a model bundle: detection and embedding each behind its own dynamic batcher,
// so that faces from many calls are computed together. Every wait ends at the caller's deadline or as soon
// as the call is cancelled. The batching policy comes in as options (as Triton hands a model's batching
// configuration to its scheduler), not from the server's configuration.
//
// No LibTorch in this header: the server includes it.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/batch/batch_observer.h"
#include "core/batch/dynamic_batcher.h"
#include "core/serving/face_engine.h"

namespace veriface {

class FaceModel;

// Where the bundle comes from and what it runs on.
struct ModelOptions {
  std::string bundle_dir = "models/default";
  std::string device = "cpu";  // "cpu", "cuda:N" or "auto"
  int torch_threads = 0;       // LibTorch's intra-op threads; 0: one per hardware core
};

struct BatchedEngineOptions {
  // The stages' names are set by the engine (kDetectStage, kEmbedStage); the rest is policy.
  DynamicBatcherOptions detect{"", 4, std::chrono::microseconds(2000), 64, 1};
  DynamicBatcherOptions embed{"", 32, std::chrono::microseconds(2000), 256, 1};
};

// The stages' names, as their batchers report them (the `stage` label of the metrics).
inline constexpr char kDetectStage[] = "detect";
inline constexpr char kEmbedStage[] = "embed";

class BatchedEngine final : public FaceEngine {
 public:
  // Loads the bundle onto its device (setting LibTorch's threads) and starts the batchers' workers, which
  // report to `observer` (may be null).
  static absl::StatusOr<std::unique_ptr<BatchedEngine>> Load(const ModelOptions& model, BatchedEngineOptions options,
                                                             std::shared_ptr<BatchObserver> observer);
  // The same over a model already loaded (shared with other users, e.g. a benchmark's baseline).
  static absl::StatusOr<std::unique_ptr<BatchedEngine>> Create(std::shared_ptr<const FaceModel> model,
                                                               BatchedEngineOptions options,
                                                               std::shared_ptr<BatchObserver> observer);
  ~BatchedEngine() override;
  BatchedEngine(const BatchedEngine&) = delete;
  BatchedEngine& operator=(const BatchedEngine&) = delete;

  const ModelSpec& spec() const override;
  std::string device() const override;
  absl::Status CheckCapacity() const override;
  absl::StatusOr<std::vector<std::vector<FaceDetection>>> Detect(const std::vector<DetectRequest>& images,
                                                                 const CallBudget& budget) override;
  absl::StatusOr<std::vector<Embedding>> Embed(const std::vector<FaceToEmbed>& faces,
                                               const CallBudget& budget) override;
  void Shutdown() override;

  const BatchedEngineOptions& options() const { return options_; }

 private:
  struct Stages;
  BatchedEngine(std::shared_ptr<const FaceModel> model, BatchedEngineOptions options, std::unique_ptr<Stages> stages);

  const std::shared_ptr<const FaceModel> model_;
  const BatchedEngineOptions options_;
  const std::unique_ptr<Stages> stages_;
};

// LibTorch's version, e.g. "1.13.0".
std::string TorchVersion();

}  // namespace veriface
