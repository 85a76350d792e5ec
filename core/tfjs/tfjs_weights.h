#pragma once
// Reader for TensorFlow.js weight files: a JSON manifest (a list of groups, each naming its binary
// shards and the tensors packed in them, in order, with no padding) plus the shards themselves.
// Quantised entries hold one (uint8) or two (uint16) bytes per value: value = q * scale + min.

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace veriface {

// Every tensor of one manifest, dequantised to float32 and kept in the manifest's layout
// (conv filters HWIO [kh, kw, in, out], dense weights [in, out]).
class TfjsWeights {
 public:
  // The bytes of the shard a manifest names (a file name relative to the manifest's folder).
  using ShardReader = std::function<absl::StatusOr<std::string>(const std::string& shard_name)>;

  // Reads the manifest at `manifest_path` and its shards from the same folder.
  static absl::StatusOr<TfjsWeights> Read(const std::string& manifest_path);
  // The same from a manifest's text; `where` names it in messages. Shard names must be plain relative
  // paths (no "..", not absolute), so that a manifest cannot make the reader open files elsewhere.
  static absl::StatusOr<TfjsWeights> Parse(std::string_view manifest_text, const std::string& where,
                                           const ShardReader& read_shard);

  // The tensor called `name`, checked against the shape the caller expects.
  absl::StatusOr<torch::Tensor> Get(const std::string& name, const std::vector<int64_t>& shape) const;

  // Tensors in manifest order, for listing and for counting parameters.
  const std::vector<std::string>& names() const { return names_; }
  int64_t parameter_count() const;
  const std::string& manifest_path() const { return manifest_path_; }

 private:
  std::string manifest_path_;
  std::vector<std::string> names_;
  std::map<std::string, torch::Tensor> tensors_;
};

// HWIO (TensorFlow) filter -> OIHW (LibTorch), contiguous.
torch::Tensor HwioToOihw(const torch::Tensor& hwio);

// Copies `value` into a module's parameter or buffer; the shapes must agree. `name` is for the error.
absl::Status AssignTensor(torch::Tensor& target, const torch::Tensor& value, const std::string& name);

}  // namespace veriface
