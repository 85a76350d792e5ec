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

}  // namespace

absl::StatusOr<TfjsWeights> TfjsWeights::Read(const std::string& manifest_path) {
  static_assert(sizeof(float) == 4, "float32 expected");
  VF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(manifest_path));
  json manifest;
  try {
    manifest = json::parse(text);
  } catch (const json::exception& ex) {
    return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": not valid JSON: ", ex.what()));
  }
  if (!manifest.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": expected a list of weight groups"));
  }
  const std::filesystem::path folder = std::filesystem::path(manifest_path).parent_path();
  TfjsWeights weights;
  weights.manifest_path_ = manifest_path;
  for (const json& group : manifest) {
    if (!group.is_object() || !group.contains("paths") || !group.contains("weights") || !group["paths"].is_array() ||
        !group["weights"].is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": a group lacks 'paths' or 'weights'"));
    }
    std::string buffer;
    std::vector<std::string> shard_names;
    for (const json& p : group["paths"]) {
      const std::string shard = (folder / p.get<std::string>()).string();
      VF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(shard));
      buffer += bytes;
      shard_names.push_back(p.get<std::string>());
    }
    const std::string shards = absl::StrJoin(shard_names, "+");
    size_t offset = 0;
    for (const json& w : group["weights"]) {
      VF_ASSIGN_OR_RETURN(const Entry e, ParseEntry(w, manifest_path));
      int64_t count = 1;
      for (const int64_t d : e.shape) count *= d;
      VF_ASSIGN_OR_RETURN(const size_t width, BytesPerValue(e.stored_dtype));
      const size_t need = static_cast<size_t>(count) * width;
      if (offset + need > buffer.size()) {
        return absl::DataLossError(absl::StrCat("tensor '", e.name, "' needs bytes ", offset, "..", offset + need,
                                                " but shards ", shards, " hold only ", buffer.size(),
                                                " bytes: truncated or mismatched shard"));
      }
      if (weights.tensors_.count(e.name) != 0) {
        return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": tensor '", e.name, "' appears twice"));
      }
      weights.tensors_[e.name] = Decode(e, buffer.data() + offset, count).reshape(e.shape);
      weights.names_.push_back(e.name);
      offset += need;
    }
    if (offset != buffer.size()) {
      return absl::DataLossError(absl::StrCat("shards ", shards, " hold ", buffer.size(), " bytes but the manifest ",
                                              "describes ", offset, ": mismatched shard or manifest"));
    }
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
