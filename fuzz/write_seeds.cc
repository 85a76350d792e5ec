// Writes the seed corpora in fuzz/corpus/ (run from the repository root: build/fuzz/veriface-fuzz-seeds).
// Each seed is a small valid input of its target, so that the fuzzer starts from inputs that pass the
// first checks instead of having to discover a PNG signature or the proto wire format on its own.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "core/gallery/collection.h"
#include "core/model/model_spec.h"
#include "fuzz/service_frames.h"
#include "proto/veriface/v1/veriface.pb.h"
#include "server/config.h"
#include "tests/serving/fake_engine.h"
#include "tests/testing/tflite_writer.h"

namespace veriface::fuzz {
namespace {

namespace v1 = veriface::v1;
using testing::FaceImage;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = std::filesystem::path("fuzz/corpus") / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

void ImageSeeds() {
  cv::Mat bgr(24, 32, CV_8UC3, cv::Scalar(20, 40, 60));
  cv::circle(bgr, {16, 12}, 6, cv::Scalar(200, 180, 160), cv::FILLED);
  for (const char* ext : {".png", ".jpg", ".bmp", ".ppm", ".pgm", ".webp"}) {
    cv::Mat image = bgr;
    if (std::string(ext) == ".pgm") cv::cvtColor(bgr, image, cv::COLOR_BGR2GRAY);
    std::vector<uchar> bytes;
    if (!cv::imencode(ext, image, bytes)) std::abort();
    Write("image_fuzzer", std::string("small") + ext, std::string(bytes.begin(), bytes.end()));
  }
  cv::Mat rgba;
  cv::cvtColor(bgr, rgba, cv::COLOR_BGR2BGRA);
  std::vector<uchar> bytes;
  cv::imencode(".png", rgba, bytes);
  Write("image_fuzzer", "alpha.png", std::string(bytes.begin(), bytes.end()));
}

void TfjsSeeds() {
  // Two tensors in one shard, one float32 and one uint8-quantised; the shard follows the NUL.
  const std::string manifest =
      R"([{"paths":["shard1"],"weights":[{"name":"conv/filters","shape":[1,1,1,2],"dtype":"float32"},)"
      R"({"name":"fc/bias","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}}]}])";
  const float f[2] = {0.25F, -1.5F};
  std::string shard(reinterpret_cast<const char*>(f), sizeof(f));
  shard += std::string("\x01\x02\x03", 3);
  Write("tfjs_manifest_fuzzer", "two_tensors", manifest + std::string(1, '\0') + shard);
  const std::string uint16 =
      R"([{"paths":["a","b"],"weights":[{"name":"w","shape":[2],"quantization":{"dtype":"uint16","scale":1,"min":0}}]}])";
  Write("tfjs_manifest_fuzzer", "uint16_two_shards",
        uint16 + std::string(1, '\0') + std::string("\x01\x00\x02\x00", 4));
}

// Two small graphs: one convolution; and a convolution with the PReLU pattern of MobileFaceNet's file
// (relu(x) + m * (x - |x|)) and a final reshape, so that the importer's graph walk is reached.
void TfliteSeeds() {
  const auto op = [](TfliteOp code, std::vector<int32_t> in, std::vector<int32_t> out) {
    TfliteOperator o;
    o.code = static_cast<int32_t>(code);
    o.inputs = std::move(in);
    o.outputs = std::move(out);
    return o;
  };
  const auto tensor = [](const char* name, std::vector<int64_t> shape, bool constant) {
    TfliteTensor t{name, shape, 0, torch::Tensor()};
    int64_t n = 1;
    for (const int64_t d : shape) n *= d;
    if (constant) t.value = torch::linspace(-1, 1, n).reshape(shape);
    return t;
  };
  testing::TfliteGraph g;
  g.tensors = {tensor("input", {1, 4, 4, 3}, false), tensor("w", {4, 3, 3, 3}, true), tensor("b", {4}, true),
               tensor("conv", {1, 2, 2, 4}, false)};
  TfliteOperator conv = op(TfliteOp::kConv2d, {0, 1, 2}, {3});
  conv.conv.stride_h = conv.conv.stride_w = 2;
  g.operators = {conv};
  g.inputs = {0};
  g.outputs = {3};
  Write("tflite_model_fuzzer", "conv", testing::WriteTflite(g));

  for (const char* name : {"relu", "abs", "sub"}) g.tensors.push_back(tensor(name, {1, 2, 2, 4}, false));
  g.tensors.push_back(tensor("m", {4}, true));
  for (const char* name : {"mul", "add"}) g.tensors.push_back(tensor(name, {1, 2, 2, 4}, false));
  g.tensors.push_back(tensor("out", {1, 16}, false));
  g.operators.push_back(op(TfliteOp::kRelu, {3}, {4}));
  g.operators.push_back(op(TfliteOp::kAbs, {3}, {5}));
  g.operators.push_back(op(TfliteOp::kSub, {3, 5}, {6}));
  g.operators.push_back(op(TfliteOp::kMul, {7, 6}, {8}));
  g.operators.push_back(op(TfliteOp::kAdd, {4, 8}, {9}));
  g.operators.push_back(op(TfliteOp::kReshape, {9}, {10}));
  g.outputs = {10};
  Write("tflite_model_fuzzer", "conv_prelu", testing::WriteTflite(g));
}

void ModelSpecSeeds() {
  ModelSpec spec;
  spec.model_id = "face-resnet+identity-0123456789ab";
  spec.description = "seed";
  spec.detector = {"mtcnn", "mtcnn.pt", nlohmann::json::object()};
  spec.backbone = {"face-resnet", "backbone.pt", {{"input_size", 150}}};
  spec.head = {"identity", "", nlohmann::json::object()};
  spec.crops = "shift=3+faceapi";
  spec.thresholds = {{"best_accuracy", 0.915}, {"far_1e-3", 0.93}};
  Write("model_spec_fuzzer", "default.json", spec.ToJson().dump(2));
  spec.flip_average = false;
  spec.crops = "none";
  spec.head = {"dense", "head.pt", {{"in", 128}, {"out", 128}}};
  Write("model_spec_fuzzer", "dense_head.json", spec.ToJson().dump());
}

void ConfigSeeds() {
  const auto defaults = server::ParseConfig("", "", {});
  if (!defaults.ok()) std::abort();
  Write("config_fuzzer", "defaults.yaml", server::ConfigToYaml(*defaults));
  std::ifstream shipped("config/veriface.yaml");
  Write("config_fuzzer", "veriface.yaml", std::string(std::istreambuf_iterator<char>(shipped), {}));
  Write("config_fuzzer", "overrides.yaml",
        "server:\n  port: 50052\ngallery:\n  store: postgres\n  max_templates: 1000\n"
        "rate_limits:\n  per_second: 5\n  burst: 10\n");
}

void PageTokenSeeds() {
  Collection collection({"fuzz", 0, 0}, "m", 2, GalleryLimits{});
  for (const char* id : {"alice", "bob", "carol"}) {
    IdentityState state;
    state.record.identity_id = id;
    state.templates.push_back({std::string("t-") + id, id, "m", {1.0F, 0.0F}, 0, {}, false});
    if (!collection.Put(std::move(state)).ok()) std::abort();
  }
  const auto page = collection.List(1, "");
  if (!page.ok()) std::abort();
  Write("page_token_fuzzer", "first_page", std::string(1, '\x01'));
  Write("page_token_fuzzer", "next_page", std::string(1, '\x02') + page->next_page_token);
}

std::string Serialized(const google::protobuf::Message& m) { return m.SerializeAsString(); }

void ServiceSeeds() {
  const std::string red = FaceImage({{cv::Scalar(255, 0, 0), 10, 10}});
  const std::string green = FaceImage({{cv::Scalar(0, 255, 0), 100, 40}});
  const std::string two = FaceImage({{cv::Scalar(255, 0, 0), 10, 10}, {cv::Scalar(0, 0, 255), 120, 60}});

  v1::EnrollRequest enroll;
  enroll.set_identity_id("alice");
  enroll.add_images(red);
  (*enroll.mutable_metadata())["name"] = "Alice";
  enroll.set_request_id("r1");
  v1::IdentifyRequest identify;
  identify.set_image(red);
  identify.set_top_k(3);
  v1::VerifyRequest verify;
  verify.mutable_a()->set_image(red);
  verify.mutable_b()->set_identity_id("alice");
  v1::EmbedRequest embed;
  embed.set_image(two);
  v1::ListIdentitiesRequest list;
  list.set_page_size(1);
  v1::GetIdentityRequest get;
  get.set_identity_id("alice");
  v1::DeleteIdentityRequest del;
  del.set_identity_id("alice");
  v1::CreateGalleryRequest create;
  create.set_name("app");
  create.set_max_templates(10);
  v1::GalleryReportRequest report;

  std::string session;
  AppendFrame(Call::kEnroll, Serialized(enroll), &session);
  AppendFrame(Call::kIdentify, Serialized(identify), &session);
  AppendFrame(Call::kVerify, Serialized(verify), &session);
  AppendFrame(Call::kListIdentities, Serialized(list), &session);
  AppendFrame(Call::kGetIdentity, Serialized(get), &session);
  AppendFrame(Call::kDeleteIdentity, Serialized(del), &session);
  Write("service_fuzzer", "enroll_identify_verify_delete", session);

  std::string galleries;
  AppendFrame(Call::kCreateGallery, Serialized(create), &galleries);
  enroll.set_gallery("app");
  enroll.set_identity_id("bob");
  enroll.set_request_id("");
  enroll.clear_images();
  enroll.add_images(green);
  AppendFrame(Call::kEnroll, Serialized(enroll), &galleries);
  report.set_gallery("app");
  AppendFrame(Call::kGalleryReport, Serialized(report), &galleries);
  v1::DeleteGalleryRequest drop;
  drop.set_name("app");
  AppendFrame(Call::kDeleteGallery, Serialized(drop), &galleries);
  Write("service_fuzzer", "gallery_lifecycle", galleries);

  std::string one;
  AppendFrame(Call::kEmbed, Serialized(embed), &one);
  Write("service_fuzzer", "embed_two_faces", one);
}

}  // namespace
}  // namespace veriface::fuzz

int main() {
  if (!std::filesystem::exists("fuzz/CMakeLists.txt")) {
    std::fprintf(stderr, "run from the repository root\n");
    return 2;
  }
  veriface::fuzz::ImageSeeds();
  veriface::fuzz::TfjsSeeds();
  veriface::fuzz::TfliteSeeds();
  veriface::fuzz::ModelSpecSeeds();
  veriface::fuzz::ConfigSeeds();
  veriface::fuzz::PageTokenSeeds();
  veriface::fuzz::ServiceSeeds();
  std::fprintf(stderr, "seeds written under fuzz/corpus/\n");
  return 0;
}
