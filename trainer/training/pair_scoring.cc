#include "trainer/training/pair_scoring.h"

#include <algorithm>
#include <map>

#include "core/common/status_macros.h"

namespace veriface {

absl::StatusOr<ResolvedPairs> ResolvePairs(const PairsFile& file, const std::vector<int>& folds,
                                           const std::string& root) {
  LfwImageResolver resolver(root);
  ResolvedPairs out;
  std::map<std::string, int64_t> index;
  std::vector<std::pair<std::string, std::string>> paths;
  for (const auto& p : file.pairs) {
    if (!folds.empty() && std::find(folds.begin(), folds.end(), p.fold) == folds.end()) continue;
    VF_ASSIGN_OR_RETURN(std::string a, resolver.Resolve(p.a));
    VF_ASSIGN_OR_RETURN(std::string b, resolver.Resolve(p.b));
    out.pairs.push_back(p);
    paths.emplace_back(a, b);
    index.emplace(a, 0);
    index.emplace(b, 0);
  }
  for (auto& [path, i] : index) {
    i = static_cast<int64_t>(out.images.size());
    out.images.push_back(path);
  }
  for (const auto& [a, b] : paths) {
    out.index_a.push_back(index[a]);
    out.index_b.push_back(index[b]);
  }
  return out;
}

absl::StatusOr<VerificationScores> CosineScores(const torch::Tensor& embeddings, const ResolvedPairs& rp) {
  const auto a = embeddings.index_select(0, torch::tensor(rp.index_a, torch::kInt64));
  const auto b = embeddings.index_select(0, torch::tensor(rp.index_b, torch::kInt64));
  const auto cos = (a * b).sum(1).to(torch::kFloat64).contiguous();
  std::vector<double> scores(cos.data_ptr<double>(), cos.data_ptr<double>() + cos.numel());
  std::vector<bool> same;
  for (const auto& p : rp.pairs) same.push_back(p.same);
  return VerificationScores::Create(std::move(scores), std::move(same));
}

}  // namespace veriface
