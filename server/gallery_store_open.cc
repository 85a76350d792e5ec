#include "server/gallery_store_open.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/gallery/postgres_gallery_store.h"
#include "core/gallery/sqlite_gallery_store.h"

namespace veriface::server {
namespace {

// The password from gallery.postgres.password_file, else $VERIFACE_POSTGRES_PASSWORD, else none (e.g.
// for trust or certificate authentication). A trailing newline, as editors and `echo` leave, is dropped.
absl::StatusOr<std::string> PostgresPassword(const ServerConfig& config) {
  if (!config.postgres_password_file.empty()) {
    std::ifstream in(config.postgres_password_file, std::ios::binary);
    if (!in) {
      return absl::FailedPreconditionError(
          absl::StrCat("gallery.postgres.password_file '", config.postgres_password_file, "' cannot be read"));
    }
    std::stringstream text;
    text << in.rdbuf();
    std::string password = text.str();
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
    return password;
  }
  const char* env = std::getenv("VERIFACE_POSTGRES_PASSWORD");
  return std::string(env == nullptr ? "" : env);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GalleryStore>> OpenGalleryStore(const ServerConfig& config) {
  if (config.gallery_store == "postgres") {
    PostgresStoreOptions options;
    options.conninfo = config.postgres_dsn;
    VF_ASSIGN_OR_RETURN(options.password, PostgresPassword(config));
    VF_ASSIGN_OR_RETURN(auto store, PostgresGalleryStore::Open(options));
    return std::unique_ptr<GalleryStore>(std::move(store));
  }
  VF_ASSIGN_OR_RETURN(auto store, SqliteGalleryStore::Open(config.gallery_path));
  return std::unique_ptr<GalleryStore>(std::move(store));
}

std::string GalleryLocation(const ServerConfig& config) {
  if (config.gallery_store == "postgres") return absl::StrCat("PostgreSQL '", config.postgres_dsn, "'");
  return absl::StrCat("'", config.gallery_path, "'");
}

}  // namespace veriface::server
