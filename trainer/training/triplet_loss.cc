#include "trainer/training/triplet_loss.h"

#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace veriface {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Mean of the per-triplet losses, with counts; a zero that keeps the graph when there are none.
TripletLossResult Reduce(const torch::Tensor& per_triplet, const torch::Tensor& embeddings) {
  TripletLossResult r;
  r.triplets = per_triplet.numel();
  if (r.triplets == 0) {
    r.loss = embeddings.sum() * 0.0;
    return r;
  }
  r.active = (per_triplet > 0).sum().item<int64_t>();
  r.loss = per_triplet.mean();
  return r;
}

}  // namespace

absl::StatusOr<Mining> ParseMining(const std::string& name) {
  if (name == "batch-hard") return Mining::kBatchHard;
  if (name == "semi-hard") return Mining::kSemiHard;
  if (name == "batch-all") return Mining::kBatchAll;
  if (name == "random") return Mining::kRandom;
  return absl::InvalidArgumentError(
      absl::StrCat("mining '", name, "' is not one of 'batch-hard', 'semi-hard', 'batch-all', 'random'"));
}

std::string MiningName(Mining mining) {
  switch (mining) {
    case Mining::kBatchHard:
      return "batch-hard";
    case Mining::kSemiHard:
      return "semi-hard";
    case Mining::kBatchAll:
      return "batch-all";
    case Mining::kRandom:
      return "random";
  }
  return "unknown";
}

absl::StatusOr<TripletDistance> ParseTripletDistance(const std::string& name) {
  if (name == "squared") return TripletDistance::kSquared;
  if (name == "euclidean") return TripletDistance::kEuclidean;
  return absl::InvalidArgumentError(absl::StrCat("distance '", name, "' is not 'squared' or 'euclidean'"));
}

std::string TripletDistanceName(TripletDistance distance) {
  return distance == TripletDistance::kSquared ? "squared" : "euclidean";
}

torch::Tensor PairwiseDistances(const torch::Tensor& x, TripletDistance distance) {
  const auto sq = (x * x).sum(1);
  const auto off_diagonal = 1.0 - torch::eye(x.size(0), x.options());
  // |a|^2 + |b|^2 - 2ab can come out slightly negative by rounding; the diagonal is exactly 0.
  const auto d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * torch::mm(x, x.t())).clamp_min(0.0) * off_diagonal;
  if (distance == TripletDistance::kSquared) return d2;
  // sqrt has an infinite slope at 0: take it at a tiny positive value there and zero the result, so
  // that coinciding rows get a zero (not NaN) gradient.
  const auto zero = (d2 == 0).to(x.scalar_type());
  return torch::sqrt(d2 + zero * 1e-16) * (1.0 - zero);
}

absl::StatusOr<TripletLossResult> TripletLoss(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                              const TripletLossOptions& options, std::mt19937_64* rng) {
  if (embeddings.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("triplet loss: embeddings must be [N, D], got ", embeddings.dim(), " dimensions"));
  }
  if (labels.dim() != 1 || labels.size(0) != embeddings.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("triplet loss: labels must be [", embeddings.size(0), "], got ",
                                                   labels.dim() == 1 ? labels.size(0) : -1, " values"));
  }
  if (!(options.margin >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("triplet loss: margin ", options.margin, " must be >= 0"));
  }
  if (options.mining == Mining::kRandom && rng == nullptr) {
    return absl::InvalidArgumentError("triplet loss: random mining needs a random generator");
  }
  const int64_t n = embeddings.size(0);
  const auto d = PairwiseDistances(embeddings, options.distance);
  const auto lab = labels.to(embeddings.device());
  const auto same = lab.unsqueeze(1) == lab.unsqueeze(0);
  const auto eye = torch::eye(n, torch::TensorOptions().dtype(torch::kBool).device(embeddings.device()));
  const auto pos = same & ~eye;
  const auto neg = ~same;
  const auto has_neg = neg.any(1);

  switch (options.mining) {
    case Mining::kBatchHard: {
      const auto valid = pos.any(1) & has_neg;
      const auto hardest_pos = d.masked_fill(~pos, -kInf).amax(1);
      const auto hardest_neg = d.masked_fill(~neg, kInf).amin(1);
      const auto per_anchor = torch::relu(hardest_pos - hardest_neg + options.margin);
      return Reduce(per_anchor.masked_select(valid), embeddings);
    }
    case Mining::kSemiHard: {
      const auto d_ap = d.unsqueeze(2);  // [a, p, 1]
      const auto d_an = d.unsqueeze(1);  // [a, 1, n]
      const auto farther = neg.unsqueeze(1) & (d_an > d_ap);
      const auto semi_hard = d_an.expand({n, n, n}).masked_fill(~farther, kInf).amin(2);
      const auto easiest = d.masked_fill(~neg, -kInf).amax(1, /*keepdim=*/true).expand({n, n});
      const auto chosen = torch::where(farther.any(2), semi_hard, easiest);
      const auto per_pair = torch::relu(d - chosen + options.margin);
      return Reduce(per_pair.masked_select(pos & has_neg.unsqueeze(1)), embeddings);
    }
    case Mining::kBatchAll: {
      const auto valid = pos.unsqueeze(2) & neg.unsqueeze(1);  // [a, p, n]
      const auto per_triplet = torch::relu(d.unsqueeze(2) - d.unsqueeze(1) + options.margin).masked_select(valid);
      TripletLossResult r;
      r.triplets = per_triplet.numel();
      const auto active = per_triplet > 0;
      r.active = active.sum().item<int64_t>();
      r.loss = r.active > 0 ? per_triplet.sum() / static_cast<double>(r.active) : embeddings.sum() * 0.0;
      return r;
    }
    case Mining::kRandom: {
      const auto pos_cpu = pos.cpu();
      const auto neg_cpu = neg.cpu();
      const auto pos_a = pos_cpu.accessor<bool, 2>();
      const auto neg_a = neg_cpu.accessor<bool, 2>();
      std::vector<int64_t> anchors, positives, negatives;
      std::vector<int64_t> p_list, n_list;
      for (int64_t i = 0; i < n; ++i) {
        p_list.clear();
        n_list.clear();
        for (int64_t j = 0; j < n; ++j) {
          if (pos_a[i][j]) p_list.push_back(j);
          if (neg_a[i][j]) n_list.push_back(j);
        }
        if (p_list.empty() || n_list.empty()) continue;
        anchors.push_back(i);
        positives.push_back(p_list[std::uniform_int_distribution<size_t>(0, p_list.size() - 1)(*rng)]);
        negatives.push_back(n_list[std::uniform_int_distribution<size_t>(0, n_list.size() - 1)(*rng)]);
      }
      const auto idx = [&](const std::vector<int64_t>& v) {
        return torch::tensor(v, torch::kInt64).to(embeddings.device());
      };
      if (anchors.empty()) return Reduce(torch::empty({0}, embeddings.options()), embeddings);
      const auto a = idx(anchors);
      const auto per_anchor = torch::relu(d.index({a, idx(positives)}) - d.index({a, idx(negatives)}) + options.margin);
      return Reduce(per_anchor, embeddings);
    }
  }
  return absl::InternalError("triplet loss: unhandled mining mode");
}

}  // namespace veriface
