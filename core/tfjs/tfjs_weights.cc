#include "core/tfjs/tfjs_weights.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"

namespace veriface {
namespace {

using nlohmann::json;

struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  std::string stored_dtype;  // the dtype of the bytes in the shard
  bool quantized = false;
  float scale = 1.0F;
  float min = 0.0F;
};

absl::StatusOr<size_t> BytesPerValue(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "uint16") return 2;
  if (dtype == "uint8") return 1;
  return absl::UnimplementedError(absl::StrCat("unsupported dtype '", dtype, "'"));
}

absl::StatusOr<Entry> ParseEntry(const json& w, const std::string& where) {
  Entry e;
  if (!w.is_object() || !w.contains("name") || !w["name"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": a weight entry has no name"));
  }
  e.name = w["name"].get<std::string>();
  if (!w.contains("shape") || !w["shape"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '", e.name, "' has no shape"));
  }
  for (const auto& d : w["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '", e.name, "' has a bad shape"));
    }
    e.shape.push_back(d.get<int64_t>());
  }
  e.stored_dtype = w.value("dtype", "float32");
  if (w.contains("quantization")) {
    const json& q = w["quantization"];
    if (!q.is_object() || !q.contains("dtype") || !q.contains("scale") || !q.contains("min") ||
        !q["scale"].is_number() || !q["min"].is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tensor '", e.name, "' has an incomplete quantization record"));
    }
    e.quantized = true;
    e.stored_dtype = q["dtype"].get<std::string>();
    // tfjs dequantises in float32; doing the same keeps the weights bit-identical to the reference.
    e.scale = q["scale"].get<float>();
    e.min = q["min"].get<float>();
  }
  if (!e.quantized && e.stored_dtype != "float32" && e.stored_dtype != "int32") {
    return absl::UnimplementedError(
        absl::StrCat(where, ": tensor '", e.name, "' has unsupported dtype '", e.stored_dtype, "'"));
  }
  if (e.quantized && e.stored_dtype != "uint8" && e.stored_dtype != "uint16") {
    return absl::UnimplementedError(
        absl::StrCat(where, ": tensor '", e.name, "' has unsupported quantization dtype '", e.stored_dtype, "'"));
  }
  return e;
}

// Decodes `count` little-endian values starting at `bytes` into float32.
torch::Tensor Decode(const Entry& e, const char* bytes, int64_t count) {
  auto out = torch::empty({count}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  if (count == 0) return out;  // an empty tensor may come from an empty shard, whose data() may be null
  if (e.stored_dtype == "float32") {
    std::memcpy(dst, bytes, static_cast<size_t>(count) * 4);
  } else if (e.stored_dtype == "int32") {
    for (int64_t i = 0; i < count; ++i) {
      int32_t v = 0;
      std::memcpy(&v, bytes + 4 * i, 4);
      dst[i] = static_cast<float>(v);
    }
  } else if (e.stored_dtype == "uint8") {
    const auto* q = reinterpret_cast<const uint8_t*>(bytes);
    for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(q[i]) * e.scale + e.min;
  } else {  // uint16
    for (int64_t i = 0; i < count; ++i) {
      uint16_t v = 0;
      std::memcpy(&v, bytes + 2 * i, 2);
      dst[i] = static_cast<float>(v) * e.scale + e.min;
    }
  }
  return out;
}

// A shard's name as the manifest gives it, refused unless it is a plain relative path.
absl::StatusOr<std::string> ShardName(const json& p, const std::string& where) {
  if (!p.is_string()) return absl::InvalidArgumentError(absl::StrCat(where, ": a shard path is not a string"));
  std::string name = p.get<std::string>();
  const std::filesystem::path path(name);
  bool escapes = name.empty() || path.is_absolute() || path.has_root_name();
  for (const auto& part : path) escapes = escapes || part == "..";
  if (escapes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": shard path '", name, "' must be a file name relative to the manifest"));
  }
  return name;
}

}  // namespace

absl::StatusOr<TfjsWeights> TfjsWeights::Read(const std::string& manifest_path) {
  VF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(manifest_path));
  const std::filesystem::path folder = std::filesystem::path(manifest_path).parent_path();
  return Parse(text, manifest_path,
               [&folder](const std::string& shard) { return ReadFileToString((folder / shard).string()); });
}

absl::StatusOr<TfjsWeights> TfjsWeights::Parse(std::string_view manifest_text, const std::string& where,
                                               const ShardReader& read_shard) {
  static_assert(sizeof(float) == 4, "float32 expected");
  const json manifest = json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(where, ": not valid JSON"));
  if (!manifest.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected a list of weight groups"));
  }
  TfjsWeights weights;
  weights.manifest_path_ = where;
  // nlohmann throws type_error where a field has the wrong JSON type (a number for a dtype, say); every
  // such fault is the manifest's, so it is answered as one.
  try {
    for (const json& group : manifest) {
      if (!group.is_object() || !group.contains("paths") || !group.contains("weights") || !group["paths"].is_array() ||
          !group["weights"].is_array()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": a group lacks 'paths' or 'weights'"));
      }
      std::string buffer;
      std::vector<std::string> shard_names;
      for (const json& p : group["paths"]) {
        VF_ASSIGN_OR_RETURN(std::string name, ShardName(p, where));
        VF_ASSIGN_OR_RETURN(const std::string bytes, read_shard(name));
        buffer += bytes;
        shard_names.push_back(std::move(name));
      }
      const std::string shards = absl::StrJoin(shard_names, "+");
      size_t offset = 0;
      for (const json& w : group["weights"]) {
        VF_ASSIGN_OR_RETURN(const Entry e, ParseEntry(w, where));
        VF_ASSIGN_OR_RETURN(const size_t width, BytesPerValue(e.stored_dtype));
        // Counted against what the shards hold as it grows, so that a shape like [2^40, 2^40] is refused
        // instead of overflowing the product.
        const size_t available = (buffer.size() - offset) / width;
        size_t count = 1;
        for (const int64_t d : e.shape) {
          const auto dim = static_cast<size_t>(d);
          count = (dim != 0 && count > available / dim) ? available + 1 : count * dim;
        }
        if (count > available) {
          return absl::DataLossError(absl::StrCat("tensor '", e.name, "' of shape [", absl::StrJoin(e.shape, ","),
                                                  "] needs more than the ", buffer.size() - offset,
                                                  " bytes left at offset ", offset, " of shards ", shards,
                                                  ", which hold ", buffer.size(), ": truncated or mismatched shard"));
        }
        if (weights.tensors_.count(e.name) != 0) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '", e.name, "' appears twice"));
        }
        weights.tensors_[e.name] = Decode(e, buffer.data() + offset, static_cast<int64_t>(count)).reshape(e.shape);
        weights.names_.push_back(e.name);
        offset += count * width;
      }
      if (offset != buffer.size()) {
        return absl::DataLossError(absl::StrCat("shards ", shards, " hold ", buffer.size(),
                                                " bytes but the manifest describes ", offset,
                                                ": mismatched shard or manifest"));
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }
  return weights;
}

absl::StatusOr<torch::Tensor> TfjsWeights::Get(const std::string& name, const std::vector<int64_t>& shape) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat(manifest_path_, ": no tensor named '", name, "'"));
  }
  if (it->second.sizes().vec() != shape) {
    return absl::InvalidArgumentError(absl::StrCat(manifest_path_, ": tensor '", name, "' has shape [",
                                                   absl::StrJoin(it->second.sizes().vec(), ","), "], expected [",
                                                   absl::StrJoin(shape, ","), "]"));
  }
  return it->second;
}

int64_t TfjsWeights::parameter_count() const {
  int64_t total = 0;
  for (const auto& [name, t] : tensors_) total += t.numel();
  return total;
}

torch::Tensor HwioToOihw(const torch::Tensor& hwio) { return hwio.permute({3, 2, 0, 1}).contiguous(); }

absl::Status AssignTensor(torch::Tensor& target, const torch::Tensor& value, const std::string& name) {
  if (target.sizes() != value.sizes()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has shape [",
                                                   absl::StrJoin(value.sizes().vec(), ","), "], the network needs [",
                                                   absl::StrJoin(target.sizes().vec(), ","), "]"));
  }
  torch::NoGradGuard no_grad;
  target.copy_(value);
  return absl::OkStatus();
}

}  // namespace veriface
