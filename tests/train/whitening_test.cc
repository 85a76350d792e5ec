// The closed-form head start: centring and within-class whitening on hand-made features with known
// answers, and DenseHead::SetAffine that carries the map into the head.

#include "trainer/training/whitening.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/embed/dense_head.h"

namespace veriface {
namespace {

// Within-class covariance of the rows of x (labels per row), divided by N - people.
torch::Tensor WithinCovariance(const torch::Tensor& x, const std::vector<int>& labels) {
  auto s = torch::zeros({x.size(1), x.size(1)}, x.options());
  int64_t degrees = 0;
  for (int person = 0; person <= *std::max_element(labels.begin(), labels.end()); ++person) {
    std::vector<int64_t> rows;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] == person) rows.push_back(static_cast<int64_t>(i));
    }
    const auto d = x.index_select(0, torch::tensor(rows)) - x.index_select(0, torch::tensor(rows)).mean(0);
    s += d.t().mm(d);
    degrees += static_cast<int64_t>(rows.size()) - 1;
  }
  return s / static_cast<double>(degrees);
}

// Four people of 50 rows in 3-D, all far from the origin along (10, 10, 10) (the shared direction), whose
// photos vary with standard deviations 3, 1 and 0.2 along the axes.
struct Toy {
  torch::Tensor x;
  std::vector<int> labels;
  Toy() {
    torch::manual_seed(7);
    const auto spread = torch::tensor({3.0, 1.0, 0.2}, torch::kFloat64);
    const auto means =
        torch::tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 1.0}, {1.0, 1.0, 1.0}}, torch::kFloat64) + 10;
    std::vector<torch::Tensor> rows;
    for (int p = 0; p < 4; ++p) {
      rows.push_back(means[p] + torch::randn({50, 3}, torch::kFloat64) * spread);
      labels.insert(labels.end(), 50, p);
    }
    x = torch::cat(rows).to(torch::kFloat32);
  }
};

torch::Tensor Apply(const AffineMap& m, const torch::Tensor& x) { return x.mm(m.weight.t()) + m.bias; }

TEST(WhiteningTest, CentringOnlyRemovesTheSharedMean) {
  const Toy toy;
  WhiteningOptions o;
  o.power = 0;
  const auto m = FitWhitening(toy.x, toy.labels, o);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->people, 4);
  EXPECT_EQ(m->samples, 200);
  // W is a multiple of the identity; the mean maps to the origin; embeddings have unit mean norm.
  const double scale = m->weight[0][0].item<double>();
  EXPECT_TRUE(torch::allclose(m->weight, scale * torch::eye(3), 1e-5, 1e-6));
  const auto y = Apply(*m, toy.x);
  EXPECT_LT(y.mean(0).abs().max().item<double>(), 1e-4);
  EXPECT_NEAR(y.norm(2, {1}).mean().item<double>(), 1.0, 1e-4);
}

TEST(WhiteningTest, FullWhiteningMakesTheWithinClassCovarianceIsotropic) {
  const Toy toy;
  WhiteningOptions o;
  o.shrinkage = 0;
  const auto m = FitWhitening(toy.x, toy.labels, o);
  ASSERT_TRUE(m.ok()) << m.status();
  const auto s = WithinCovariance(Apply(*m, toy.x).to(torch::kFloat64), toy.labels);
  const double average = s.trace().item<double>() / 3;
  EXPECT_TRUE(torch::allclose(s, average * torch::eye(3, torch::kFloat64), 1e-3, 1e-3 * average)) << s;

  // Shrinkage keeps part of the original shape: the noisiest axis is still the widest, but less so
  // (the x : z variance ratio, about 225 : 1, drops to about 60 : 1 with S_w shrunk halfway to 3.35 I).
  o.shrinkage = 0.5;
  const auto shrunk = FitWhitening(toy.x, toy.labels, o);
  ASSERT_TRUE(shrunk.ok());
  const auto d = torch::diag(WithinCovariance(Apply(*shrunk, toy.x).to(torch::kFloat64), toy.labels));
  EXPECT_GT(d[0].item<double>(), 1.5 * d[2].item<double>());
  const auto raw = torch::diag(WithinCovariance(toy.x.to(torch::kFloat64), toy.labels));
  EXPECT_LT(d[0].item<double>() / d[2].item<double>(), raw[0].item<double>() / raw[2].item<double>() / 2);
}

TEST(WhiteningTest, LdaKeepsTheBetweenClassDirections) {
  // Two people who differ only along z, the axis along which their photos vary least: one LDA output
  // must be (almost) z alone.
  const Toy toy;
  std::vector<int> labels;
  std::vector<int64_t> rows;
  for (size_t i = 0; i < toy.labels.size(); ++i) {
    if (toy.labels[i] == 0 || toy.labels[i] == 2) {
      rows.push_back(static_cast<int64_t>(i));
      labels.push_back(toy.labels[i]);
    }
  }
  auto x = toy.x.index_select(0, torch::tensor(rows)).clone();
  x.select(1, 0).fill_(10).add_(torch::randn({x.size(0)}) * 3);  // person 0's x offset removed
  WhiteningOptions o;
  o.output_dim = 1;
  const auto m = FitWhitening(x, labels, o);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->weight.sizes(), (std::vector<int64_t>{1, 3}));
  const auto w = m->weight[0] / m->weight[0].norm();
  EXPECT_GT(std::abs(w[2].item<double>()), 0.95) << m->weight;
}

TEST(WhiteningTest, BadInputsAreErrors) {
  const Toy toy;
  WhiteningOptions o;
  EXPECT_FALSE(FitWhitening(toy.x, {0, 1}, o).ok());                    // labels do not match
  EXPECT_FALSE(FitWhitening(toy.x, std::vector<int>(200, 0), o).ok());  // one person
  o.shrinkage = 1.5;
  EXPECT_FALSE(FitWhitening(toy.x, toy.labels, o).ok());
  o.shrinkage = 0;
  o.output_dim = 4;
  EXPECT_FALSE(FitWhitening(toy.x, toy.labels, o).ok());
  // Rows of two photos each in 3-D: two people give a rank-2 within-class covariance.
  const auto few = torch::tensor({{1.0, 0.0, 0.0}, {2.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 2.0, 0.0}});
  o.output_dim = 0;
  EXPECT_FALSE(FitWhitening(few, {0, 0, 1, 1}, o).ok());
  o.shrinkage = 0.1;
  EXPECT_TRUE(FitWhitening(few, {0, 0, 1, 1}, o).ok());
}

TEST(DenseHeadTest, SetAffineComputesTheMapPlainAndResidual) {
  torch::manual_seed(1);
  const auto w = torch::randn({4, 4});
  const auto b = torch::randn({4});
  const auto x = torch::randn({5, 4});
  for (const bool residual : {false, true}) {
    DenseHeadOptions o;
    o.output_dim = 4;
    o.residual = residual;
    const auto head = DenseHead::Create(4, o);
    ASSERT_TRUE(head.ok());
    ASSERT_TRUE((*head)->SetAffine(w, b).ok());
    EXPECT_TRUE(torch::allclose((*head)->forward(x), x.mm(w.t()) + b, 1e-5, 1e-5)) << residual;
  }
  DenseHeadOptions hidden;
  hidden.output_dim = 4;
  hidden.hidden = {8};
  EXPECT_FALSE((*DenseHead::Create(4, hidden))->SetAffine(w, b).ok());
  DenseHeadOptions narrow;
  narrow.output_dim = 2;
  EXPECT_FALSE((*DenseHead::Create(4, narrow))->SetAffine(w, b).ok());  // wrong shape
}

}  // namespace
}  // namespace veriface
