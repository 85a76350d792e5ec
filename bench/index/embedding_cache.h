#pragma once
// The LFW embedding cache that lfw_embeddings writes and index_bench reads: one binary file of records
// (person, image path, unit embedding), so that the slow part (the face pipeline, ~10 faces/s on 2 cores)
// runs once and the index runs reuse it.
//
// Layout, little-endian: "VFLFWEMB" (8 bytes), u32 version (1), u32 dim, u64 count, then per record
// u32 name length, name bytes, u32 path length, path bytes, float[dim].

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace veriface::bench {

struct LfwEmbedding {
  std::string person;
  std::string path;  // as given to lfw_embeddings (under ../shared/data/lfw)
  std::vector<float> embedding;
};

inline constexpr char kEmbeddingMagic[8] = {'V', 'F', 'L', 'F', 'W', 'E', 'M', 'B'};

inline absl::StatusOr<std::vector<LfwEmbedding>> ReadEmbeddingCache(const std::string& path, uint32_t* dim_out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open embedding cache ", path));
  char magic[8];
  uint32_t version = 0, dim = 0;
  uint64_t count = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&version), 4);
  in.read(reinterpret_cast<char*>(&dim), 4);
  in.read(reinterpret_cast<char*>(&count), 8);
  if (!in || std::memcmp(magic, kEmbeddingMagic, 8) != 0 || version != 1 || dim == 0 || dim > 4096) {
    return absl::DataLossError(absl::StrCat(path, " is not a version-1 embedding cache"));
  }
  std::vector<LfwEmbedding> out(count);
  for (LfwEmbedding& r : out) {
    for (std::string* s : {&r.person, &r.path}) {
      uint32_t n = 0;
      in.read(reinterpret_cast<char*>(&n), 4);
      if (!in || n > 4096) return absl::DataLossError(absl::StrCat(path, ": bad string length ", n));
      s->resize(n);
      in.read(s->data(), n);
    }
    r.embedding.resize(dim);
    in.read(reinterpret_cast<char*>(r.embedding.data()), static_cast<std::streamsize>(dim * sizeof(float)));
    if (!in) return absl::DataLossError(absl::StrCat(path, " is truncated"));
  }
  if (dim_out) *dim_out = dim;
  return out;
}

// Written to a temporary file then renamed, so that an interrupted write leaves the previous cache whole.
inline absl::Status WriteEmbeddingCache(const std::string& path, uint32_t dim,
                                        const std::vector<LfwEmbedding>& records) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    const uint32_t version = 1;
    const uint64_t count = records.size();
    out.write(kEmbeddingMagic, 8);
    out.write(reinterpret_cast<const char*>(&version), 4);
    out.write(reinterpret_cast<const char*>(&dim), 4);
    out.write(reinterpret_cast<const char*>(&count), 8);
    for (const LfwEmbedding& r : records) {
      if (r.embedding.size() != dim) return absl::InvalidArgumentError(absl::StrCat(r.path, ": wrong dimension"));
      for (const std::string* s : {&r.person, &r.path}) {
        const uint32_t n = static_cast<uint32_t>(s->size());
        out.write(reinterpret_cast<const char*>(&n), 4);
        out.write(s->data(), n);
      }
      out.write(reinterpret_cast<const char*>(r.embedding.data()), static_cast<std::streamsize>(dim * sizeof(float)));
    }
    if (!out.flush()) return absl::DataLossError(absl::StrCat("short write to ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace veriface::bench
