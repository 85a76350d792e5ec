#include "server/config_flags.h"

#include <cstdlib>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace veriface::server {
namespace {

constexpr std::pair<const char*, const char*> kShorthands[] = {{"--listen", "server.listen"},
                                                               {"--metrics-listen", "metrics.listen"},
                                                               {"--model", "model.dir"},
                                                               {"--device", "model.device"},
                                                               {"--gallery", "gallery.path"},
                                                               {"--gallery-store", "gallery.store"},
                                                               {"--postgres-dsn", "gallery.postgres.dsn"},
                                                               {"--torch-threads", "inference.torch_threads"},
                                                               {"--ready-file", "server.ready_file"},
                                                               {"--log-level", "logging.level"}};

}  // namespace

void ConfigFlags::AddTo(CLI::App& app) {
  app.add_option("-c,--config", config_path_, "YAML configuration (config/veriface.yaml documents every key)");
  app.add_option("--set", sets_, "Override any configuration key: --set inference.embed.max_batch=16")
      ->type_name("KEY=VALUE");
  values_.resize(std::size(kShorthands));
  for (size_t i = 0; i < std::size(kShorthands); ++i) {
    app.add_option(kShorthands[i].first, values_[i], absl::StrCat("Same as --set ", kShorthands[i].second, "=..."));
  }
}

absl::StatusOr<ServerConfig> ConfigFlags::Load(const CLI::App& app) const {
  std::vector<std::pair<std::string, std::string>> overrides;
  if (const char* dsn = std::getenv("VERIFACE_POSTGRES_DSN"); dsn != nullptr && *dsn != '\0') {
    overrides.emplace_back("gallery.postgres.dsn", dsn);
  }
  for (const std::string& s : sets_) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--set '", s, "' is not KEY=VALUE"));
    }
    overrides.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  for (size_t i = 0; i < std::size(kShorthands); ++i) {
    if (app.count(kShorthands[i].first) > 0) overrides.emplace_back(kShorthands[i].second, values_[i]);
  }
  return LoadConfig(config_path_, overrides);
}

}  // namespace veriface::server
