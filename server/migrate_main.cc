// veriface-migrate: moves a deployment's gallery (the store its configuration names) to another model
// bundle, re-embedding each template from the face crop it keeps, so that nobody re-enrols by hand.
//
//   veriface-migrate -c veriface.yaml --to-model models/new status   where it stands, who needs re-enrolment
//   veriface-migrate -c veriface.yaml --to-model models/new run      re-embed (resumable; old model serves)
//   veriface-migrate -c veriface.yaml --to-model models/new switch   last pass, then switch over atomically
//
// During `run` the servers keep serving the old model and keep enrolling; `switch` embeds what they
// enrolled since, and from its commit on their enrolments are refused (FAILED_PRECONDITION) until they
// restart with the new bundle. docs/ARCHITECTURE.md ("Moving to another model") has the rolling order.

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/common/device.h"
#include "core/gallery/model_migration.h"
#include "core/model/crop_embedding.h"
#include "core/model/face_model.h"
#include "server/config_flags.h"
#include "server/gallery_store_open.h"

namespace veriface::server {
namespace {

void Print(const MigrationProgress& p) {
  std::cout << "store model: " << p.from_model << "\ntarget model: " << p.to_model << "\ntemplates: " << p.templates
            << "\nre-embedded: " << p.reembedded << "\nwithout face crop: " << p.without_crop << " (of "
            << p.identities_without_crop_count << " identities)\n";
  for (const MigrationProgress::Identity& id : p.identities_without_crop) {
    std::cout << "  needs re-enrolment: gallery '" << id.gallery << "' identity '" << id.identity_id << "' ("
              << id.templates_without_crop << " templates without a crop)\n";
  }
  const int64_t unlisted = p.identities_without_crop_count - static_cast<int64_t>(p.identities_without_crop.size());
  if (unlisted > 0) std::cout << "  ... and " << unlisted << " more (--list N)\n";
}

int Fail(const absl::Status& status) {
  std::cerr << "veriface-migrate: " << status.message() << "\n";
  return 1;
}

}  // namespace
}  // namespace veriface::server

int main(int argc, char** argv) {
  using namespace veriface;
  using namespace veriface::server;
  CLI::App app{"veriface-migrate: move a gallery to another model from its stored face crops"};
  ConfigFlags config_flags;
  config_flags.AddTo(app);
  std::string to_model;
  MigrationOptions options;
  bool drop = false;
  app.add_option("--to-model", to_model, "The model bundle to move to")->required();
  app.add_option("--list", options.max_listed, "Identities needing re-enrolment to name")
      ->check(CLI::NonNegativeNumber);
  app.require_subcommand(1);
  app.add_subcommand("status", "Where the migration stands; which identities need re-enrolment");
  CLI::App* run = app.add_subcommand("run", "Re-embed the templates from their crops (resumable)");
  run->add_option("--batch-size", options.batch_size, "Crops per committed batch")->check(CLI::PositiveNumber);
  run->add_option("--max-batches", options.max_batches, "Stop after this many batches (0: all)")
      ->check(CLI::NonNegativeNumber);
  CLI::App* sw = app.add_subcommand("switch", "Re-embed what is left, then switch the store to the model");
  sw->add_flag("--drop-templates-without-crop", drop,
               "Delete the templates that keep no crop (and identities left with none) instead of refusing");
  CLI11_PARSE(app, argc, argv);

  const auto config = config_flags.Load(app);
  if (!config.ok()) {
    std::cerr << "veriface-migrate: " << config.status().message() << "\n";
    return 2;
  }
  const auto spec = ReadModelSpec(to_model);
  if (!spec.ok()) return Fail(spec.status());
  const ModelTarget target{spec->model_id, spec->embedding_dim};
  auto store = OpenGalleryStore(*config);
  if (!store.ok()) return Fail(store.status());

  if (app.got_subcommand("status")) {
    const auto progress = (*store)->Progress(target, options.max_listed);
    if (!progress.ok()) return Fail(progress.status());
    Print(*progress);
    return 0;
  }
  if (config->torch_threads > 0) torch::set_num_threads(config->torch_threads);
  const auto device = ParseDevice(config->device);
  if (!device.ok()) return Fail(device.status());
  const auto model = FaceModel::Load(to_model, *device);
  if (!model.ok()) return Fail(model.status());
  const CropEmbedder embed = [&](const std::vector<FaceCrop>& crops) { return EmbedFaceCrops(**model, crops); };
  options.on_progress = [](const MigrationProgress& p) {
    std::cerr << "re-embedded " << p.reembedded << " of " << p.templates - p.without_crop << " templates\n";
  };

  if (app.got_subcommand("run")) {
    const auto progress = ReembedPass(**store, target, embed, options);
    if (!progress.ok()) return Fail(progress.status());
    Print(*progress);
    return 0;
  }
  // The bulk outside the switch's transaction, so that writers wait only for what came in meanwhile.
  const auto progress = ReembedPass(**store, target, embed, options);
  if (!progress.ok()) return Fail(progress.status());
  const auto dropped = SwitchOver(**store, target, embed, drop);
  if (!dropped.ok()) return Fail(dropped.status());
  std::cout << "switched to model " << target.model_id << " (" << target.embedding_dim << "-D); " << *dropped
            << " templates without a face crop dropped\nrestart the servers with model.dir " << to_model << "\n";
  return 0;
}
