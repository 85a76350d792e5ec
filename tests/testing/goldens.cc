#include "tests/testing/goldens.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/image/decode.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {

nlohmann::json LoadGoldenJson(const std::string& relative_path) {
  std::ifstream in(GoldensDir() + "/" + relative_path);
  if (!in) throw std::runtime_error("cannot open golden " + relative_path);
  return nlohmann::json::parse(in);
}

torch::Tensor LoadGoldenTensor(const std::string& folder, const nlohmann::json& entry) {
  const std::string path = GoldensDir() + "/" + folder + "/" + entry.at("file").get<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open golden " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  const std::string dtype = entry.at("dtype").get<std::string>();
  const auto type = dtype == "float32" ? torch::kFloat32 : dtype == "uint8" ? torch::kUInt8 : torch::kFloat64;
  const auto shape = entry.at("shape").get<std::vector<int64_t>>();
  auto t = torch::empty(shape, type);
  if (static_cast<size_t>(t.nbytes()) != bytes.size()) throw std::runtime_error("golden size mismatch: " + path);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

cv::Mat GoldenImage(const nlohmann::json& record) {
  const auto load = [](const std::string& relative) {
    auto image = LoadImageFile(LfwDir() + "/" + relative);
    if (!image.ok()) throw std::runtime_error(std::string(image.status().message()));
    return *image;
  };
  if (!record.contains("op")) return load(record.at("path").get<std::string>());
  const std::string op = record.at("op").get<std::string>();
  const auto inputs = record.at("inputs").get<std::vector<std::string>>();
  if (op == "hconcat") {
    std::vector<cv::Mat> parts;
    for (const auto& p : inputs) parts.push_back(load(p));
    cv::Mat out;
    cv::hconcat(parts, out);
    return out;
  }
  if (op == "upscale3") {
    const cv::Mat src = load(inputs.at(0));
    cv::Mat out(src.rows * 3, src.cols * 3, CV_8UC3);
    for (int y = 0; y < out.rows; ++y) {
      for (int x = 0; x < out.cols; ++x) out.at<cv::Vec3b>(y, x) = src.at<cv::Vec3b>(y / 3, x / 3);
    }
    return out;
  }
  throw std::runtime_error("unknown golden op " + op);
}

}  // namespace veriface::testing
