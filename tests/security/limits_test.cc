// The limits that protect the server, each set far below its default on one real server, and each
// shown to hold at its configured value: message size, image bytes and pixels, faces per image, images
// per enrolment, top-k, page size, the smallest face searched for, the gallery's size in all and per
// identity, and the model queues' capacity (their overflow is tested in tests/server/overload_test.cc).
// Also: the metric series dashboards divide by exist from start-up, at 0.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kMessageBytes = 1 << 20;
constexpr int kImageBytes = 512 << 10;
constexpr int kPixels = 500'000;

class LimitsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::vector<std::pair<std::string, std::string>> limits = {
        {"server.max_receive_message_bytes", std::to_string(kMessageBytes)},
        {"limits.max_image_bytes", std::to_string(kImageBytes)},
        {"limits.max_image_pixels", std::to_string(kPixels)},
        {"limits.max_faces_per_image", "2"},
        {"limits.max_images_per_enroll", "2"},
        {"limits.max_top_k", "3"},
        {"limits.max_page_size", "2"},
        {"limits.min_face_size_floor", "40"},
        {"gallery.max_templates", "3"},
        {"gallery.max_templates_per_identity", "2"},
        {"inference.detect.max_queue_size", "3"},
        {"inference.embed.max_queue_size", "5"},
    };
    std::vector<std::string> args;
    for (const auto& [key, value] : limits) {
      args.push_back("--set");
      args.push_back(key + "=" + value);
    }
    auto server = ServerProcess::Start(dir_->File("gallery.db"), args);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = server->release();
    // Scraped before any call, for StartUpSeriesExistAtZero.
    auto metrics = HttpGet(server_->metrics_port(), "/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status().message();
    startup_metrics_ = new std::string(*metrics);
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->log();
      delete server_;
      server_ = nullptr;
    }
    delete startup_metrics_;
    startup_metrics_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's server did not start"; }
  void TearDown() override { EXPECT_EQ(server_->Health(), "SERVING") << server_->log(); }

  static grpc::Status Embed(const std::string& image, v1::EmbedResponse* response, int max_faces = 0,
                            int min_face_size = 0) {
    v1::EmbedRequest request;
    request.set_image(image);
    request.set_max_faces(max_faces);
    request.mutable_detection()->set_min_face_size(min_face_size);
    return server_->stub()->Embed(Context().get(), request, response);
  }
  static grpc::Status Enroll(const std::string& id, const std::vector<std::string>& images) {
    v1::EnrollRequest request;
    request.set_identity_id(id);
    for (const std::string& image : images) request.add_images(image);
    request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
    v1::EnrollResponse response;
    return server_->stub()->Enroll(Context().get(), request, &response);
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static std::string* startup_metrics_;
};

TempDir* LimitsTest::dir_ = nullptr;
ServerProcess* LimitsTest::server_ = nullptr;
std::string* LimitsTest::startup_metrics_ = nullptr;

// Three LFW photos side by side (750x250): at least three faces in one image.
std::string ThreeFaces() {
  std::vector<cv::Mat> photos;
  for (const char* person : {"Colin_Powell", "Tony_Blair", "Serena_Williams"}) {
    photos.push_back(cv::imread(LfwImagePath(person, 1), cv::IMREAD_COLOR));
  }
  cv::Mat strip;
  cv::hconcat(photos, strip);
  std::vector<uint8_t> bytes;
  cv::imencode(".jpg", strip, bytes);
  return std::string(bytes.begin(), bytes.end());
}

TEST_F(LimitsTest, MessageSize) {
  v1::EmbedResponse response;
  grpc::Status s = Embed(std::string(kMessageBytes + 1024, 'x'), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // Under the message limit but over limits.max_image_bytes: the image is refused, by name.
  s = Embed(std::string(kImageBytes + 1, 'x'), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("the limit is ", kImageBytes)));
}

TEST_F(LimitsTest, ImagePixels) {
  v1::EmbedResponse response;
  grpc::Status s = Embed(PngHeader(1000, 1000), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("the limit is ", kPixels, " pixels")));
  // Just under the limit the header passes the check (and the missing pixel data fails the decode).
  s = Embed(PngHeader(700, 700), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), Not(HasSubstr("the limit is")));
}

TEST_F(LimitsTest, FacesPerImage) {
  const std::string strip = ThreeFaces();
  v1::EmbedResponse response;
  grpc::Status s = Embed(strip, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.faces_size(), 2);
  EXPECT_GE(response.faces_omitted(), 1);
  for (const v1::Face& face : response.faces()) EXPECT_EQ(face.embedding_size(), 128);
  s = Embed(strip, &response, /*max_faces=*/3);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("max_faces is 3"));
}

TEST_F(LimitsTest, RequestSizes) {
  // Images per Enroll: refused before any work.
  grpc::Status s = Enroll("too-many", {"a", "b", "c"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("at most 2 per request"));
  v1::IdentifyRequest identify;
  identify.set_image(LfwImage("Colin_Powell", 1));
  identify.set_top_k(4);
  v1::IdentifyResponse found;
  s = server_->stub()->Identify(Context().get(), identify, &found);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("top_k is 4"));
  v1::ListIdentitiesRequest list;
  list.set_page_size(3);
  v1::ListIdentitiesResponse page;
  s = server_->stub()->ListIdentities(Context().get(), list, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_size is 3"));
  list.set_page_size(2);
  EXPECT_TRUE(server_->stub()->ListIdentities(Context().get(), list, &page).ok());
  // The smallest face a request may ask to search for.
  v1::EmbedResponse response;
  s = Embed(LfwImage("Colin_Powell", 1), &response, 0, /*min_face_size=*/20);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("between 40 and 10000"));
  EXPECT_TRUE(Embed(LfwImage("Colin_Powell", 1), &response, 0, /*min_face_size=*/40).ok());
}

TEST_F(LimitsTest, GallerySize) {
  ASSERT_TRUE(Enroll("powell", {LfwImage("Colin_Powell", 1), LfwImage("Colin_Powell", 2)}).ok());
  // Per identity: a third template of the same person.
  grpc::Status s = Enroll("powell", {LfwImage("Colin_Powell", 3)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("limit of 2 per identity"));
  ASSERT_TRUE(Enroll("blair", {LfwImage("Tony_Blair", 1)}).ok());
  // In all: the gallery holds 3, its limit.
  s = Enroll("williams", {LfwImage("Serena_Williams", 1)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("gallery.max_templates (3)"));
  v1::GetIdentityRequest get;
  get.set_identity_id("williams");
  v1::Identity identity;
  EXPECT_EQ(server_->stub()->GetIdentity(Context().get(), get, &identity).error_code(), grpc::StatusCode::NOT_FOUND);
  // Room again after a deletion.
  v1::DeleteIdentityRequest del;
  del.set_identity_id("blair");
  v1::DeleteIdentityResponse deleted;
  ASSERT_TRUE(server_->stub()->DeleteIdentity(Context().get(), del, &deleted).ok());
  EXPECT_TRUE(Enroll("williams", {LfwImage("Serena_Williams", 1)}).ok());
}

TEST_F(LimitsTest, QueueCapacityIsPublished) {
  auto metrics = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status().message();
  EXPECT_EQ(MetricValue(*metrics, "veriface_batch_queue_capacity", {{"stage", "detect"}}), 3);
  EXPECT_EQ(MetricValue(*metrics, "veriface_batch_queue_capacity", {{"stage", "embed"}}), 5);
}

// True when the exposition has the sample `name{labels}` (in any label order), whatever its value.
bool HasSeries(const std::string& exposition, const std::string& name,
               const std::vector<std::pair<std::string, std::string>>& labels) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) != 0) continue;
    bool all = true;
    for (const auto& [key, value] : labels) all = all && line.find(key + "=\"" + value + "\"") != std::string::npos;
    if (all) return true;
  }
  return false;
}

TEST_F(LimitsTest, StartUpSeriesExistAtZero) {
  const std::string& m = *startup_metrics_;
  for (const char* method : {"Embed", "Verify", "Enroll", "EnrollStream", "Identify", "DeleteIdentity", "GetIdentity",
                             "ListIdentities", "GetModelInfo"}) {
    for (const char* code : {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED",
                             "PERMISSION_DENIED", "INTERNAL"}) {
      EXPECT_TRUE(HasSeries(m, "veriface_rpc_requests_total", {{"method", method}, {"code", code}}))
          << method << " " << code;
    }
    EXPECT_TRUE(HasSeries(m, "veriface_rpc_duration_seconds_count", {{"method", method}})) << method;
  }
  EXPECT_EQ(MetricValue(m, "veriface_rpc_requests_total", {{"method", "Verify"}, {"code", "OK"}}), 0);
  for (const char* stage : {"detect", "embed"}) {
    for (const char* reason : {"queue_full", "deadline_exceeded", "cancelled", "shutdown"}) {
      EXPECT_TRUE(HasSeries(m, "veriface_batch_dropped_total", {{"stage", stage}, {"reason", reason}}))
          << stage << " " << reason;
    }
    EXPECT_TRUE(HasSeries(m, "veriface_batch_queue_depth", {{"stage", stage}})) << stage;
    EXPECT_TRUE(HasSeries(m, "veriface_batch_size_count", {{"stage", stage}})) << stage;
    EXPECT_TRUE(HasSeries(m, "veriface_batch_queue_capacity", {{"stage", stage}})) << stage;
  }
}

}  // namespace
}  // namespace veriface::testing
