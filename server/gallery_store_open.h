#pragma once
// The gallery store the configuration names (gallery.store), opened; the one place the server picks
// between SQLite and PostgreSQL and reads the database password.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/gallery/gallery_store.h"
#include "server/config.h"

namespace veriface::server {

absl::StatusOr<std::unique_ptr<GalleryStore>> OpenGalleryStore(const ServerConfig& config);

// Where the gallery is, for logs and messages: the file, or the DSN (which holds no password).
std::string GalleryLocation(const ServerConfig& config);

}  // namespace veriface::server
