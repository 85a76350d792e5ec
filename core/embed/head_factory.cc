#include "absl/strings/str_cat.h"
#include "core/embed/dense_head.h"
#include "core/embed/head.h"

namespace veriface {

absl::StatusOr<std::shared_ptr<Head>> MakeHead(const std::string& arch, int64_t input_dim,
                                               const nlohmann::json& params) {
  if (arch == "identity") return std::shared_ptr<Head>(std::make_shared<IdentityHead>(input_dim));
  if (arch == "dense") return DenseHead::Create(input_dim, params);
  return absl::InvalidArgumentError(absl::StrCat("unknown head architecture '", arch, "'"));
}

}  // namespace veriface
