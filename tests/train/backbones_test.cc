// The from-scratch backbones and the dense head: output shapes, parameter checking, and one
// optimisation step with the triplet loss that lowers the loss on a tiny batch. Also face-resnet, the
// pretrained fourth backbone, fine-tuned the same way.

#include <gtest/gtest.h>

#include "core/embed/backbone.h"
#include "core/embed/dense_head.h"
#include "core/embed/head.h"
#include "tests/testing/test_env.h"
#include "trainer/training/triplet_loss.h"

namespace veriface {
namespace {

using nlohmann::json;

struct Case {
  std::string arch;
  json params;
  int64_t feature_dim;
};

// Small enough to run in a second or two on a CPU, big enough to exercise every block type.
std::vector<Case> Cases() {
  return {
      {"mobilenetv2", {{"input_size", 64}, {"width", 0.35}, {"last_channels", 96}}, 96},
      {"vgg19", {{"input_size", 32}, {"width", 0.125}}, 64},
      {"inception-resnet-v2", {{"input_size", 75}, {"width", 0.1}, {"blocks", {1, 1, 1}}}, 154},
  };
}

class BackboneTest : public ::testing::TestWithParam<Case> {};

TEST_P(BackboneTest, OutputShapeAndParams) {
  const Case& c = GetParam();
  auto made = MakeBackbone(c.arch, c.params);
  ASSERT_TRUE(made.ok()) << made.status();
  auto backbone = *made;
  EXPECT_EQ(backbone->arch(), c.arch);
  EXPECT_EQ(backbone->feature_dim(), c.feature_dim);
  EXPECT_EQ(backbone->input_size(), c.params["input_size"].get<int64_t>());
  backbone->eval();
  torch::NoGradGuard no_grad;
  const int64_t s = backbone->input_size();
  const auto out = backbone->forward(torch::rand({3, 3, s, s}) * 255);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, c.feature_dim}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  // params() rebuilds the same network: same parameter count.
  auto again = MakeBackbone(c.arch, backbone->params());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->parameters().size(), backbone->parameters().size());
}

// One SGD step on a fixed batch of 6 random chips (3 people x 2) through backbone + dense head, with
// the batch-hard triplet loss: the loss on the same batch goes down.
void ExpectOneStepLowersLoss(const std::shared_ptr<Backbone>& backbone, double lr) {
  torch::manual_seed(3);
  auto head = *DenseHead::Create(backbone->feature_dim(), DenseHeadOptions{});
  const int64_t s = backbone->input_size();
  const auto chips = torch::rand({6, 3, s, s}) * 255;
  const auto labels = torch::tensor({0, 0, 1, 1, 2, 2}, torch::kInt64);
  TripletLossOptions o;
  o.margin = 0.5;
  const auto loss_now = [&] {
    const auto e = torch::nn::functional::normalize(head->forward(backbone->forward(chips)),
                                                    torch::nn::functional::NormalizeFuncOptions().dim(1));
    return *TripletLoss(e, labels, o);
  };
  backbone->train();
  head->train();
  std::vector<torch::Tensor> params = backbone->parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(lr));
  const auto before = loss_now();
  ASSERT_GT(before.active, 0) << "the batch must violate the margin for the test to mean anything";
  sgd.zero_grad();
  before.loss.backward();
  sgd.step();
  const double after = loss_now().loss.item<double>();
  EXPECT_LT(after, before.loss.item<double>()) << backbone->arch();
}

TEST_P(BackboneTest, OneStepLowersTheTripletLoss) {
  const Case& c = GetParam();
  torch::manual_seed(1);
  ExpectOneStepLowersLoss(*MakeBackbone(c.arch, c.params), 0.01);
}

INSTANTIATE_TEST_SUITE_P(FromScratch, BackboneTest, ::testing::ValuesIn(Cases()), [](const auto& info) {
  std::string name = info.param.arch;
  for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return name;
});

TEST(FaceResNetTest, FineTuningStepLowersTheTripletLoss) {
  const auto model = testing::DefaultModel();
  ASSERT_NE(model, nullptr);
  // A trainable copy of the pretrained network.
  auto backbone = *MakeBackbone("face-resnet", json::object());
  {
    torch::NoGradGuard no_grad;
    auto src = model->embedder().backbone()->named_parameters();
    for (auto& p : backbone->named_parameters()) p.value().copy_(src[p.key()]);
  }
  ExpectOneStepLowersLoss(backbone, 1e-3);
}

TEST(BackboneParamsTest, BadParamsAreReadableErrors) {
  const auto expect_error = [](const std::string& arch, const json& params, const std::string& needle) {
    const auto made = MakeBackbone(arch, params);
    ASSERT_FALSE(made.ok()) << arch << " " << params.dump();
    EXPECT_NE(std::string(made.status().message()).find(needle), std::string::npos) << made.status();
  };
  expect_error("mobilenetv2", {{"width", "wide"}}, "'width' must be a number");
  expect_error("mobilenetv2", {{"widht", 1.0}}, "unknown parameter 'widht'");
  expect_error("vgg19", {{"input_size", 16}}, "outside [32, 512]");
  expect_error("inception-resnet-v2", {{"input_size", 60}}, "outside [75, 640]");
  expect_error("inception-resnet-v2", {{"blocks", {1, 2}}}, "needs 3 counts");
  expect_error("resnet50", json::object(), "unknown backbone architecture 'resnet50'");
}

TEST(DenseHeadTest, ShapesResidualStartAndErrors) {
  const auto head = MakeHead("dense", 40, {{"output_dim", 16}, {"hidden", {32}}, {"dropout", 0.1}});
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ((*head)->input_dim(), 40);
  EXPECT_EQ((*head)->output_dim(), 16);
  (*head)->eval();
  EXPECT_EQ((*head)->forward(torch::randn({5, 40})).sizes(), (std::vector<int64_t>{5, 16}));

  // The residual head starts as the identity: over a pretrained descriptor, training starts at the
  // pass-through head.
  const auto residual = MakeHead("dense", 128, {{"residual", true}});
  ASSERT_TRUE(residual.ok()) << residual.status();
  const auto x = torch::randn({4, 128});
  EXPECT_TRUE(torch::equal((*residual)->forward(x), x));

  // Input normalisation spreads features that all point the same way (as post-ReLU pooled features
  // of an untrained backbone do): in training mode the embeddings are no longer nearly parallel.
  const auto normed = MakeHead("dense", 64, {{"input_norm", true}, {"output_dim", 32}});
  ASSERT_TRUE(normed.ok()) << normed.status();
  const auto parallel = torch::rand({16, 64}) * 0.01 + 5.0;
  const auto mean_cosine = [&](const std::shared_ptr<Head>& h) {
    const auto e =
        torch::nn::functional::normalize(h->forward(parallel), torch::nn::functional::NormalizeFuncOptions().dim(1));
    return torch::mm(e, e.t()).mean().item<double>();
  };
  EXPECT_LT(mean_cosine(*normed), 0.5);
  EXPECT_GT(mean_cosine(*MakeHead("dense", 64, {{"output_dim", 32}})), 0.9);  // without: all one direction

  EXPECT_FALSE(MakeHead("dense", 64, {{"residual", true}}).ok());  // 64 in, 128 out
  EXPECT_FALSE(MakeHead("dense", 64, {{"hidden", {0}}}).ok());
  EXPECT_FALSE(MakeHead("dense", 64, {{"dropout", 1.5}}).ok());
  EXPECT_FALSE(MakeHead("mlp", 64, json::object()).ok());
}

}  // namespace
}  // namespace veriface
