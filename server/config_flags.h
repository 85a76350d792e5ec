#pragma once
// The configuration flags veriface-server and veriface-migrate share, so that both read one deployment's
// configuration the same way: -c FILE, --set KEY=VALUE and the shorthands (--gallery, --postgres-dsn, ...),
// with VERIFACE_POSTGRES_DSN between the file and the command line (a Secret can supply the DSN).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace veriface::server {

class ConfigFlags {
 public:
  void AddTo(CLI::App& app);
  // After `app` has parsed the command line. INVALID_ARGUMENT for a --set that is not KEY=VALUE; else
  // LoadConfig's answer.
  absl::StatusOr<ServerConfig> Load(const CLI::App& app) const;

 private:
  std::string config_path_;
  std::vector<std::string> sets_;
  std::vector<std::string> values_;  // one per shorthand
};

}  // namespace veriface::server
