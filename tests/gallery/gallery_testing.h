#pragma once
// Helpers shared by the gallery tests and benchmark: random unit embeddings, opening a real
// SQLite-backed gallery, and reaching one of its collections. Free of GoogleTest, for the benchmark.

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"

namespace veriface::testing {

inline constexpr int64_t kDim = 128;
inline constexpr char kModel[] = "test-model-v1";

inline std::vector<float> RandomUnit(std::mt19937& rng, int64_t dim = kDim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  double sum = 0;
  for (float& x : v) {
    x = normal(rng);
    sum += static_cast<double>(x) * x;
  }
  const double norm = std::sqrt(sum);
  for (float& x : v) x = static_cast<float>(x / norm);
  return v;
}

inline std::vector<std::vector<float>> RandomUnits(std::mt19937& rng, int n, int64_t dim = kDim) {
  std::vector<std::vector<float>> out;
  for (int i = 0; i < n; ++i) out.push_back(RandomUnit(rng, dim));
  return out;
}

inline double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
}

inline absl::StatusOr<std::unique_ptr<Gallery>> OpenGallery(const std::string& path, const std::string& model = kModel,
                                                            int64_t dim = kDim, GalleryLimits limits = {}) {
  auto store = SqliteGalleryStore::Open(path);
  if (!store.ok()) return store.status();
  return Gallery::Open(std::move(*store), model, dim, limits);
}

// The named collection ("" is the default), held by the caller. When there is none, an empty stand-in
// named "<missing NAME>" comes back instead, so that the caller's expectations fail on it rather than the
// test crashing on a null pointer; tests that need the gallery to exist assert Find first.
inline std::shared_ptr<const Collection> CollectionOrEmpty(const Gallery& gallery, const std::string& name = "") {
  absl::StatusOr<std::shared_ptr<const Collection>> found = gallery.Find(name);
  if (found.ok()) return *std::move(found);
  return std::make_shared<const Collection>(GalleryRecord{"<missing " + name + ">", 0, 0}, gallery.model_id(),
                                            gallery.embedding_dim(), gallery.limits());
}

}  // namespace veriface::testing
