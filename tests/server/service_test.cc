// Every RPC of the real veriface-server on real LFW images, bad input, unknown ids, deadlines, health,
// reflection and metrics. One server for the whole suite (the model loads once).

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/model/model_spec.h"
#include "proto/grpc_health/v1/health.grpc.pb.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

// How far FaceQualityIsReported... shrinks a 250x250 LFW photo: a face of a few pixels between the eyes.
constexpr double kTinyScale = 0.15;

class ServiceTest : public SharedServerTest {
 protected:
  void TearDown() override {
    // Whatever a test sent, the server is still up and serving.
    EXPECT_EQ(server_->Health(), "SERVING") << server_->log();
  }

  static v1::EmbedResponse EmbedOk(const std::string& image) {
    v1::EmbedRequest request;
    request.set_image(image);
    v1::EmbedResponse response;
    const grpc::Status s = server_->stub()->Embed(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  static grpc::Status Verify(const v1::VerifyRequest& request, v1::VerifyResponse* response) {
    return server_->stub()->Verify(Context().get(), request, response);
  }

  static grpc::Status EnrollImages(const std::string& id, const std::vector<std::string>& images,
                                   v1::EnrollResponse* response,
                                   v1::FaceSelection selection = v1::FACE_SELECTION_CENTRAL) {
    v1::EnrollRequest request;
    request.set_identity_id(id);
    for (const auto& image : images) request.add_images(image);
    request.set_face_selection(selection);
    return server_->stub()->Enroll(Context().get(), request, response);
  }
};

std::string EncodedGray(int width, int height, const char* ext) {
  cv::Mat gray(height, width, CV_8UC3, cv::Scalar(128, 128, 128));
  std::vector<uint8_t> bytes;
  cv::imencode(ext, gray, bytes);
  return std::string(bytes.begin(), bytes.end());
}

TEST_F(ServiceTest, ModelInfoDescribesTheBundle) {
  auto spec = ReadModelSpec(DefaultModelDir());
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  v1::ModelInfo info;
  const grpc::Status s = server_->stub()->GetModelInfo(Context().get(), v1::GetModelInfoRequest(), &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(info.model_id(), spec->model_id);
  EXPECT_EQ(info.embedding_dim(), spec->embedding_dim);
  EXPECT_EQ(info.default_min_face_size(), spec->detector_defaults.min_face_size);
  EXPECT_EQ(info.device(), "cpu");
  EXPECT_FALSE(info.server_version().empty());
  if (spec->thresholds.count(spec->default_operating_point) > 0) {
    EXPECT_EQ(info.default_threshold_source(), spec->default_operating_point);
    EXPECT_DOUBLE_EQ(info.default_threshold(), spec->thresholds.at(spec->default_operating_point));
  } else {
    EXPECT_EQ(info.default_threshold_source(), "server-fallback");
  }
  EXPECT_EQ(info.provenance().fields().at("source").string_value(), spec->provenance.value("source", ""));
}

TEST_F(ServiceTest, EmbedFindsTheFaceOfAnLfwImage) {
  const v1::EmbedResponse r = EmbedOk(LfwImage("Colin_Powell", 1));
  EXPECT_EQ(r.image_width(), 250);
  EXPECT_EQ(r.image_height(), 250);
  ASSERT_GE(r.faces_size(), 1);
  // LFW crops are centred on their subject.
  const v1::Face& f = r.faces(0);
  EXPECT_GT(f.score(), 0.9);
  EXPECT_LT(f.box().x1(), 125);
  EXPECT_GT(f.box().x2(), 125);
  ASSERT_EQ(f.landmarks_size(), 5);
  ASSERT_EQ(f.embedding_size(), 128);
  double norm = 0;
  for (const float v : f.embedding()) norm += v * v;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  EXPECT_FALSE(r.model_id().empty());
}

TEST_F(ServiceTest, EmbedListsEveryFaceOfAGroupPhotoAndHonoursMaxFaces) {
  const std::string photo = ReadBytes(GroupPhotosDir() + "/sample1.jpg");
  const v1::EmbedResponse all = EmbedOk(photo);
  EXPECT_GE(all.faces_size(), 3);
  for (int i = 1; i < all.faces_size(); ++i) EXPECT_GE(all.faces(i - 1).score(), all.faces(i).score());

  v1::EmbedRequest request;
  request.set_image(photo);
  request.set_max_faces(1);
  request.set_skip_embeddings(true);
  v1::EmbedResponse one;
  ASSERT_TRUE(server_->stub()->Embed(Context().get(), request, &one).ok());
  ASSERT_EQ(one.faces_size(), 1);
  EXPECT_EQ(one.faces(0).embedding_size(), 0);
  EXPECT_EQ(one.faces_omitted(), all.faces_size() - 1);
  EXPECT_FLOAT_EQ(one.faces(0).score(), all.faces(0).score());
}

TEST_F(ServiceTest, VerifyTellsTheSamePersonFromAnother) {
  v1::VerifyRequest same;
  same.mutable_a()->set_image(LfwImage("George_W_Bush", 1));
  same.mutable_b()->set_image(LfwImage("George_W_Bush", 2));
  v1::VerifyResponse r;
  ASSERT_TRUE(Verify(same, &r).ok());
  EXPECT_TRUE(r.match()) << r.similarity();
  EXPECT_GT(r.similarity(), r.threshold());
  EXPECT_FALSE(r.model_id().empty());
  EXPECT_EQ(r.face_a().image_width(), 250);
  EXPECT_GE(r.face_a().faces_detected(), 1);

  v1::VerifyRequest different;
  different.mutable_a()->set_image(LfwImage("George_W_Bush", 1));
  different.mutable_b()->set_image(LfwImage("Serena_Williams", 1));
  v1::VerifyResponse d;
  ASSERT_TRUE(Verify(different, &d).ok());
  EXPECT_FALSE(d.match()) << d.similarity();
  EXPECT_LT(d.similarity(), r.similarity());
}

TEST_F(ServiceTest, VerifyAcceptsEmbeddingsAndThresholdOverrides) {
  const v1::EmbedResponse e = EmbedOk(LfwImage("Tony_Blair", 1));
  ASSERT_GE(e.faces_size(), 1);
  v1::VerifyRequest request;
  request.mutable_a()->mutable_embedding()->mutable_values()->CopyFrom(e.faces(0).embedding());
  request.mutable_b()->set_image(LfwImage("Tony_Blair", 1));
  request.mutable_b()->set_face_selection(v1::FACE_SELECTION_HIGHEST_SCORE);
  v1::VerifyResponse r;
  ASSERT_TRUE(Verify(request, &r).ok());
  EXPECT_NEAR(r.similarity(), 1.0, 1e-4);  // the same face both ways
  EXPECT_FALSE(r.has_face_a());
  EXPECT_TRUE(r.has_face_b());

  request.mutable_threshold()->set_threshold(0.99999);
  request.mutable_a()->set_image(LfwImage("Tony_Blair", 2));
  ASSERT_TRUE(Verify(request, &r).ok());
  EXPECT_EQ(r.threshold_source(), "request");
  EXPECT_DOUBLE_EQ(r.threshold(), 0.99999);
  EXPECT_FALSE(r.match());

  request.mutable_threshold()->set_operating_point("no-such-point");
  grpc::Status s = Verify(request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("no-such-point"));

  request.mutable_threshold()->set_threshold(1.5);
  s = Verify(request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("[-1, 1]"));

  request.clear_threshold();
  request.mutable_a()->mutable_embedding()->mutable_values()->CopyFrom(e.faces(0).embedding());
  request.mutable_a()->mutable_embedding()->add_values(0.5F);  // 129 values
  s = Verify(request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("129 values"));

  v1::VerifyRequest empty_side;
  empty_side.mutable_a()->set_image(LfwImage("Tony_Blair", 1));
  s = Verify(empty_side, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("b is empty"));

  // A face_selection number this server has no word for (a newer client's) is refused by name, not guessed.
  empty_side.mutable_b()->set_image(LfwImage("Tony_Blair", 2));
  empty_side.mutable_b()->set_face_selection(static_cast<v1::FaceSelection>(42));
  s = Verify(empty_side, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("b.image: unknown face_selection 42"));
}

TEST_F(ServiceTest, VerifyReportsWhichFaceOfAGroupPhotoItUsed) {
  const std::string photo = ReadBytes(GroupPhotosDir() + "/sample4.jpg");
  const v1::EmbedResponse all = EmbedOk(photo);
  ASSERT_GE(all.faces_size(), 2);
  int largest = 0;
  const auto area = [](const v1::Face& f) { return (f.box().x2() - f.box().x1()) * (f.box().y2() - f.box().y1()); };
  for (int i = 1; i < all.faces_size(); ++i) {
    if (area(all.faces(i)) > area(all.faces(largest))) largest = i;
  }
  v1::VerifyRequest request;
  request.mutable_a()->set_image(photo);
  request.mutable_b()->set_image(photo);
  request.mutable_b()->set_face_selection(v1::FACE_SELECTION_HIGHEST_SCORE);
  v1::VerifyResponse r;
  ASSERT_TRUE(Verify(request, &r).ok());
  EXPECT_EQ(r.face_a().index(), largest);  // the default is the largest face
  EXPECT_EQ(r.face_a().faces_detected(), all.faces_size());
  EXPECT_EQ(r.face_b().index(), 0);  // faces come by descending score

  request.mutable_a()->set_face_selection(v1::FACE_SELECTION_SINGLE);
  const grpc::Status s = Verify(request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("exactly one"));
}

TEST_F(ServiceTest, EnrollIdentifyGetListAndDelete) {
  v1::EnrollResponse enrolled;
  grpc::Status s = EnrollImages("Laura_Bush", {LfwImage("Laura_Bush", 1), LfwImage("Laura_Bush", 2)}, &enrolled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(enrolled.template_ids_size(), 2);
  EXPECT_EQ(enrolled.template_count(), 2);
  EXPECT_EQ(enrolled.faces_size(), 2);
  ASSERT_TRUE(EnrollImages("Hugo_Chavez", {LfwImage("Hugo_Chavez", 1)}, &enrolled).ok());
  // A second enrolment adds a template to the same identity.
  v1::EnrollRequest more;
  more.set_identity_id("Hugo_Chavez");
  (*more.mutable_metadata())["name"] = "Hugo Chavez";
  more.add_images(LfwImage("Hugo_Chavez", 2));
  more.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  ASSERT_TRUE(server_->stub()->Enroll(Context().get(), more, &enrolled).ok());
  EXPECT_EQ(enrolled.template_count(), 2);

  v1::IdentifyRequest identify;
  identify.set_image(LfwImage("Laura_Bush", 3));
  identify.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  v1::IdentifyResponse found;
  ASSERT_TRUE(server_->stub()->Identify(Context().get(), identify, &found).ok());
  ASSERT_GE(found.matches_size(), 1);
  EXPECT_EQ(found.matches(0).identity_id(), "Laura_Bush");
  EXPECT_TRUE(found.matches(0).match());
  for (const auto& m : found.matches()) EXPECT_GE(m.similarity(), found.threshold());

  identify.set_include_below_threshold(true);
  identify.set_top_k(10);
  ASSERT_TRUE(server_->stub()->Identify(Context().get(), identify, &found).ok());
  std::set<std::string> ids;
  for (const auto& m : found.matches()) ids.insert(m.identity_id());
  EXPECT_TRUE(ids.count("Hugo_Chavez") > 0);
  for (const auto& m : found.matches()) {
    if (m.identity_id() == "Hugo_Chavez") {
      EXPECT_FALSE(m.match());
      EXPECT_EQ(m.metadata().at("name"), "Hugo Chavez");
    }
  }

  v1::GetIdentityRequest get;
  get.set_identity_id("Hugo_Chavez");
  v1::Identity identity;
  ASSERT_TRUE(server_->stub()->GetIdentity(Context().get(), get, &identity).ok());
  EXPECT_EQ(identity.template_ids_size(), 2);
  EXPECT_EQ(identity.metadata().at("name"), "Hugo Chavez");

  v1::VerifyRequest against;
  against.mutable_a()->set_image(LfwImage("Hugo_Chavez", 3));
  against.mutable_a()->set_face_selection(v1::FACE_SELECTION_CENTRAL);
  against.mutable_b()->set_identity_id("Hugo_Chavez");
  v1::VerifyResponse verified;
  ASSERT_TRUE(Verify(against, &verified).ok());
  EXPECT_TRUE(verified.match()) << verified.similarity();
  EXPECT_TRUE(verified.template_id_b() == identity.template_ids(0) ||
              verified.template_id_b() == identity.template_ids(1));

  v1::DeleteIdentityRequest del;
  del.set_identity_id("Hugo_Chavez");
  v1::DeleteIdentityResponse deleted;
  ASSERT_TRUE(server_->stub()->DeleteIdentity(Context().get(), del, &deleted).ok());
  EXPECT_EQ(deleted.templates_deleted(), 2);
  EXPECT_EQ(server_->stub()->GetIdentity(Context().get(), get, &identity).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(server_->stub()->DeleteIdentity(Context().get(), del, &deleted).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(server_->stub()->Identify(Context().get(), identify, &found).ok());
  for (const auto& m : found.matches()) EXPECT_NE(m.identity_id(), "Hugo_Chavez");
}

TEST_F(ServiceTest, VerifyComparesTwoEnrolledIdentities) {
  // The same person enrolled twice under different ids (from different photos), and someone else.
  v1::EnrollResponse first, second, other;
  ASSERT_TRUE(EnrollImages("sharon-a", {LfwImage("Ariel_Sharon", 1), LfwImage("Ariel_Sharon", 2)}, &first).ok());
  ASSERT_TRUE(EnrollImages("sharon-b", {LfwImage("Ariel_Sharon", 3)}, &second).ok());
  ASSERT_TRUE(EnrollImages("rumsfeld", {LfwImage("Donald_Rumsfeld", 1)}, &other).ok());

  v1::VerifyRequest request;
  request.mutable_a()->set_identity_id("sharon-a");
  request.mutable_b()->set_identity_id("sharon-b");
  v1::VerifyResponse same;
  grpc::Status s = Verify(request, &same);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(same.match()) << same.similarity();
  // The pair used is reported, one template from each side.
  EXPECT_THAT(std::vector<std::string>(first.template_ids().begin(), first.template_ids().end()),
              ::testing::Contains(same.template_id_a()));
  EXPECT_EQ(same.template_id_b(), second.template_ids(0));
  EXPECT_FALSE(same.has_face_a());
  EXPECT_FALSE(same.has_face_b());

  // It is the best pair: no single template of sharon-a beats it against sharon-b's template.
  for (const std::string& image : {LfwImage("Ariel_Sharon", 1), LfwImage("Ariel_Sharon", 2)}) {
    v1::VerifyRequest one;
    one.mutable_a()->set_image(image);
    one.mutable_a()->set_face_selection(v1::FACE_SELECTION_CENTRAL);
    one.mutable_b()->set_identity_id("sharon-b");
    v1::VerifyResponse r;
    ASSERT_TRUE(Verify(one, &r).ok());
    EXPECT_LE(r.similarity(), same.similarity() + 1e-5);
  }

  request.mutable_b()->set_identity_id("rumsfeld");
  v1::VerifyResponse different;
  ASSERT_TRUE(Verify(request, &different).ok());
  EXPECT_FALSE(different.match()) << different.similarity();
  EXPECT_LT(different.similarity(), same.similarity());
  EXPECT_EQ(different.template_id_b(), other.template_ids(0));

  request.mutable_b()->set_identity_id("nobody-enrolled");
  s = Verify(request, &different);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("b: "));
  EXPECT_THAT(s.error_message(), HasSubstr("nobody-enrolled"));
}

TEST_F(ServiceTest, ListIdentitiesPagesThroughEveryIdentityOnce) {
  const std::vector<std::string> people = {"Andre_Agassi", "Jean_Chretien", "John_Ashcroft", "Lleyton_Hewitt",
                                           "Vladimir_Putin"};
  v1::EnrollResponse enrolled;
  for (const auto& p : people) ASSERT_TRUE(EnrollImages("list-" + p, {LfwImage(p, 1)}, &enrolled).ok()) << p;
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListIdentitiesRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    v1::ListIdentitiesResponse page;
    ASSERT_TRUE(server_->stub()->ListIdentities(Context().get(), request, &page).ok());
    EXPECT_LE(page.identities_size(), 2);
    for (const auto& i : page.identities()) seen.push_back(i.identity_id());
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 100);
  for (const auto& p : people) EXPECT_EQ(std::count(seen.begin(), seen.end(), "list-" + p), 1) << p;
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));

  v1::ListIdentitiesRequest bad;
  bad.set_page_size(-1);
  v1::ListIdentitiesResponse page;
  EXPECT_EQ(server_->stub()->ListIdentities(Context().get(), bad, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, EnrollStreamAnswersEachItemInOrderAndSurvivesBadItems) {
  const std::vector<std::pair<std::string, std::string>> items = {
      {"stream-Serena_Williams", LfwImage("Serena_Williams", 1)},
      {"stream-Serena_Williams", LfwImage("Serena_Williams", 2)},
      {"stream-bad", "definitely not an image"},
      {"stream-Ariel_Sharon", LfwImage("Ariel_Sharon", 1)},
      {"", LfwImage("Ariel_Sharon", 2)},
      {"stream-Ariel_Sharon", LfwImage("Ariel_Sharon", 3)},
  };
  auto context = Context(120);
  auto stream = server_->stub()->EnrollStream(context.get());
  for (const auto& [id, image] : items) {
    v1::EnrollRequest request;
    request.set_identity_id(id);
    request.add_images(image);
    request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  std::vector<v1::EnrollStreamResponse> responses;
  v1::EnrollStreamResponse response;
  while (stream->Read(&response)) responses.push_back(response);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), items.size());
  for (size_t i = 0; i < responses.size(); ++i) {
    EXPECT_EQ(responses[i].index(), static_cast<int64_t>(i));
    const bool bad = i == 2 || i == 4;
    EXPECT_EQ(responses[i].has_error(), bad) << i << ": " << responses[i].error().message();
    if (bad) {
      EXPECT_EQ(responses[i].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    }
  }
  EXPECT_THAT(responses[4].error().message(), HasSubstr("identity_id is empty"));
  v1::GetIdentityRequest get;
  get.set_identity_id("stream-Ariel_Sharon");
  v1::Identity identity;
  ASSERT_TRUE(server_->stub()->GetIdentity(Context().get(), get, &identity).ok());
  EXPECT_EQ(identity.template_ids_size(), 2);
}

struct BadImage {
  std::string name;
  std::function<std::string()> bytes;
  grpc::StatusCode code;
  std::string message;  // a part of the message
};

TEST_F(ServiceTest, BadImagesGetAClearStatusAndTheServerCarriesOn) {
  const std::string jpeg = LfwImage("Colin_Powell", 2);
  std::string oversize = jpeg;
  oversize.resize(17 << 20, '\0');  // over limits.max_image_bytes (16 MiB), under the message limit
  const std::vector<BadImage> cases = {
      {"empty", [] { return std::string(); }, grpc::StatusCode::INVALID_ARGUMENT, "empty"},
      {"corrupt", [] { return std::string(4096, '\x5a'); }, grpc::StatusCode::INVALID_ARGUMENT, "image"},
      {"truncated", [&] { return jpeg.substr(0, jpeg.size() / 3); }, grpc::StatusCode::INVALID_ARGUMENT, "image"},
      {"not an image", [] { return std::string("GIF? no: a plain text file\n"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "image"},
      {"20000x20000 header", [] { return PngHeader(20000, 20000); }, grpc::StatusCode::INVALID_ARGUMENT, "pixels"},
      {"over the size limit", [&] { return oversize; }, grpc::StatusCode::INVALID_ARGUMENT, "bytes"},
      {"no face", [] { return EncodedGray(320, 240, ".png"); }, grpc::StatusCode::FAILED_PRECONDITION, "no face found"},
  };
  for (const BadImage& c : cases) {
    SCOPED_TRACE(c.name);
    v1::IdentifyRequest request;
    request.set_image(c.bytes());
    v1::IdentifyResponse response;
    const grpc::Status s = server_->stub()->Identify(Context().get(), request, &response);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
    EXPECT_THAT(s.error_message(), HasSubstr("image"));  // names the field
    EXPECT_EQ(server_->Health(), "SERVING");
  }
  // Embed reports no faces as an empty list, not an error.
  EXPECT_EQ(EmbedOk(EncodedGray(320, 240, ".jpg")).faces_size(), 0);
}

TEST_F(ServiceTest, EnrollRefusesAGroupPhotoUnlessAFaceIsChosen) {
  const std::string photo = ReadBytes(GroupPhotosDir() + "/sample5.jpg");
  v1::EnrollRequest request;
  request.set_identity_id("group");
  request.add_images(photo);
  v1::EnrollResponse response;
  grpc::Status s = server_->stub()->Enroll(Context().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("images[0]"));
  EXPECT_THAT(s.error_message(), HasSubstr("faces found where exactly one is needed"));
  v1::GetIdentityRequest get;
  get.set_identity_id("group");
  v1::Identity identity;
  EXPECT_EQ(server_->stub()->GetIdentity(Context().get(), get, &identity).error_code(), grpc::StatusCode::NOT_FOUND);

  // All or nothing: one bad image among good ones enrols none of them.
  request.set_identity_id("all-or-nothing");
  request.clear_images();
  request.add_images(LfwImage("Jennifer_Aniston", 1));
  request.add_images("garbage");
  request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
  s = server_->stub()->Enroll(Context().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("images[1]"));
  get.set_identity_id("all-or-nothing");
  EXPECT_EQ(server_->stub()->GetIdentity(Context().get(), get, &identity).error_code(), grpc::StatusCode::NOT_FOUND);

  request.set_face_selection(v1::FACE_SELECTION_LARGEST);
  request.set_identity_id("group");
  request.clear_images();
  request.add_images(photo);
  s = server_->stub()->Enroll(Context().get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GE(response.faces(0).faces_detected(), 3);
}

// A photo shrunk onto a grey canvas of its own size: the face keeps its place but has few pixels.
std::string Shrunk(const std::string& person, int n, double scale) {
  const std::string bytes = LfwImage(person, n);
  const cv::Mat image = cv::imdecode(std::vector<uint8_t>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
  cv::Mat small;
  cv::resize(image, small, cv::Size(), scale, scale, cv::INTER_AREA);
  cv::Mat canvas(image.size(), CV_8UC3, cv::Scalar(128, 128, 128));
  small.copyTo(
      canvas(cv::Rect((canvas.cols - small.cols) / 2, (canvas.rows - small.rows) / 2, small.cols, small.rows)));
  std::vector<uint8_t> png;
  cv::imencode(".png", canvas, png);
  return std::string(png.begin(), png.end());
}

TEST_F(ServiceTest, FaceQualityIsReportedAndAPoorEnrolmentPhotoIsRefused) {
  const v1::EmbedResponse clean = EmbedOk(LfwImage("Colin_Powell", 1));
  ASSERT_GE(clean.faces_size(), 1);
  const v1::FaceQuality& q = clean.faces(0).quality();
  EXPECT_EQ(q.level(), v1::QUALITY_LEVEL_HIGH);
  EXPECT_GT(q.interocular_distance(), 30);
  EXPECT_GT(q.sharpness(), 0);
  EXPECT_GT(q.brightness(), 40);
  EXPECT_NEAR(q.detector_score(), clean.faces(0).score(), 1e-6);

  // A tiny face: found (the request searches small faces), but LOW, so enrolment refuses it by default.
  const std::string tiny = Shrunk("Colin_Powell", 2, kTinyScale);
  v1::EnrollRequest request;
  request.set_identity_id("tiny-colin");
  request.add_images(tiny);
  request.mutable_detection()->set_min_face_size(12);
  v1::EnrollResponse enrolled;
  grpc::Status s = server_->stub()->Enroll(Context().get(), request, &enrolled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("images[0]: the face's quality is LOW"));
  EXPECT_THAT(s.error_message(), HasSubstr("SMALL_FACE"));
  request.set_min_quality(v1::QUALITY_LEVEL_LOW);  // the caller accepts it explicitly
  s = server_->stub()->Enroll(Context().get(), request, &enrolled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(enrolled.faces(0).face().quality().level(), v1::QUALITY_LEVEL_LOW);

  // Probes pass at any level unless the request asks for more.
  v1::IdentifyRequest identify;
  identify.set_image(tiny);
  identify.mutable_detection()->set_min_face_size(12);
  v1::IdentifyResponse found;
  ASSERT_TRUE(server_->stub()->Identify(Context().get(), identify, &found).ok());
  EXPECT_EQ(found.face().face().quality().level(), v1::QUALITY_LEVEL_LOW);
  identify.set_min_quality(v1::QUALITY_LEVEL_MEDIUM);
  s = server_->stub()->Identify(Context().get(), identify, &found);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("below the MEDIUM this request asks for"));
  identify.set_min_quality(static_cast<v1::QualityLevel>(9));
  EXPECT_EQ(server_->stub()->Identify(Context().get(), identify, &found).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, GalleryReportEstimatesTheThresholdsOnTheGallerysOwnPeople) {
  v1::CreateGalleryRequest create;
  create.set_name("report");
  v1::GalleryInfo info;
  ASSERT_TRUE(server_->stub()->CreateGallery(Context().get(), create, &info).ok());
  v1::GalleryReportRequest request;
  request.set_gallery("report");
  v1::GalleryReport report;
  grpc::Status s = server_->stub()->GetGalleryReport(Context().get(), request, &report);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "an empty gallery has no pairs";

  for (const char* person : {"Tony_Blair", "Gerhard_Schroeder", "Jean_Chretien"}) {
    v1::EnrollRequest enroll;
    enroll.set_gallery("report");
    enroll.set_identity_id(person);
    enroll.add_images(LfwImage(person, 1));
    enroll.add_images(LfwImage(person, 2));
    enroll.set_face_selection(v1::FACE_SELECTION_CENTRAL);
    v1::EnrollResponse enrolled;
    ASSERT_TRUE(server_->stub()->Enroll(Context().get(), enroll, &enrolled).ok());
  }
  request.add_target_fars(1e-2);
  s = server_->stub()->GetGalleryReport(Context().get(), request, &report);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(report.gallery(), "report");
  EXPECT_EQ(report.identities(), 3);
  EXPECT_EQ(report.genuine_pairs(), 3);
  EXPECT_EQ(report.impostor_pairs(), 12);
  ASSERT_GE(report.thresholds_size(), 2);
  EXPECT_EQ(report.thresholds(0).name(), "in force");
  EXPECT_EQ(report.thresholds(0).source(), "best_accuracy");
  // Three different people: no impostor pair reaches the calibrated threshold, every genuine one does.
  EXPECT_EQ(report.thresholds(0).far().errors(), 0);
  EXPECT_EQ(report.thresholds(0).frr().errors(), 0);
  EXPECT_GT(report.thresholds(0).far().high(), 0.1) << "12 pairs say little: the interval must be wide";
  ASSERT_EQ(report.far_targets_size(), 1);
  EXPECT_FALSE(report.far_targets(0).reliable());
  EXPECT_EQ(report.far_targets(0).impostor_pairs_needed(), 1000);
  EXPECT_EQ(report.histogram().genuine_size(), 50);
  int64_t counted = 0;
  for (const int64_t c : report.histogram().impostor()) counted += c;
  EXPECT_EQ(counted, 12);
  EXPECT_GT(report.notes_size(), 0);

  request.set_histogram_bins(5000);
  EXPECT_EQ(server_->stub()->GetGalleryReport(Context().get(), request, &report).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, UnknownIdsAreNotFound) {
  v1::GetIdentityRequest get;
  get.set_identity_id("nobody-by-this-name");
  v1::Identity identity;
  grpc::Status s = server_->stub()->GetIdentity(Context().get(), get, &identity);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("nobody-by-this-name"));

  v1::DeleteIdentityRequest del;
  del.set_identity_id("nobody-by-this-name");
  v1::DeleteIdentityResponse deleted;
  EXPECT_EQ(server_->stub()->DeleteIdentity(Context().get(), del, &deleted).error_code(), grpc::StatusCode::NOT_FOUND);

  v1::VerifyRequest verify;
  verify.mutable_a()->set_image(LfwImage("Colin_Powell", 1));
  verify.mutable_b()->set_identity_id("nobody-by-this-name");
  v1::VerifyResponse r;
  s = Verify(verify, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("nobody-by-this-name"));

  get.set_identity_id("");
  EXPECT_EQ(server_->stub()->GetIdentity(Context().get(), get, &identity).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, AnExpiredDeadlineIsNotComputed) {
  v1::VerifyRequest request;
  request.mutable_a()->set_image(ReadBytes(GroupPhotosDir() + "/sample2.jpg"));
  request.mutable_b()->set_image(ReadBytes(GroupPhotosDir() + "/sample3.jpg"));
  v1::VerifyResponse r;
  // Two 1920-pixel photos cannot be detected and embedded in a millisecond.
  const grpc::Status s = server_->stub()->Verify(Context(0.001).get(), request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server answers the next call normally.
  v1::ModelInfo info;
  EXPECT_TRUE(server_->stub()->GetModelInfo(Context().get(), v1::GetModelInfoRequest(), &info).ok());
}

TEST_F(ServiceTest, AMessageOverTheSizeLimitIsResourceExhausted) {
  v1::EmbedRequest request;
  request.set_image(std::string(65 << 20, 'x'));  // over server.max_receive_message_bytes (64 MiB)
  v1::EmbedResponse response;
  const grpc::Status s = server_->stub()->Embed(Context().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(ServiceTest, HealthKnowsTheServiceByName) {
  auto stub = grpc::health::v1::Health::NewStub(server_->channel());
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  request.set_service("veriface.v1.Veriface");
  ASSERT_TRUE(stub->Check(Context().get(), request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  request.set_service("no.such.Service");
  EXPECT_EQ(stub->Check(Context().get(), request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, ReflectionListsTheService) {
  // ServerReflectionRequest{list_services: ""} by hand (field 7, length-delimited, empty): Debian ships
  // no reflection .proto to generate a stub from.
  const grpc::internal::RpcMethod method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                         grpc::internal::RpcMethod::BIDI_STREAMING);
  auto context = Context(10);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(server_->channel().get(),
                                                                                            method, context.get()));
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer buffer(&slice, 1);
  ASSERT_TRUE(stream->Write(buffer));
  stream->WritesDone();
  grpc::ByteBuffer reply;
  ASSERT_TRUE(stream->Read(&reply));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(bytes, HasSubstr("veriface.v1.Veriface"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServiceTest, MetricsScrapeShowsTheCountersMoving) {
  auto before = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(before.ok()) << before.status().message();
  const double verify_ok = MetricValue(*before, "veriface_rpc_requests_total", {{"method", "Verify"}, {"code", "OK"}});
  const double not_found =
      MetricValue(*before, "veriface_rpc_requests_total", {{"method", "GetIdentity"}, {"code", "NOT_FOUND"}});
  const double embedded = MetricValue(*before, "veriface_batch_size_count", {{"stage", "embed"}});

  v1::VerifyRequest request;
  request.mutable_a()->set_image(LfwImage("Gerhard_Schroeder", 1));
  request.mutable_b()->set_image(LfwImage("Gerhard_Schroeder", 2));
  v1::VerifyResponse r;
  ASSERT_TRUE(Verify(request, &r).ok());
  v1::GetIdentityRequest get;
  get.set_identity_id("still-nobody");
  v1::Identity identity;
  EXPECT_EQ(server_->stub()->GetIdentity(Context().get(), get, &identity).error_code(), grpc::StatusCode::NOT_FOUND);

  auto after = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(MetricValue(*after, "veriface_rpc_requests_total", {{"method", "Verify"}, {"code", "OK"}}), verify_ok + 1);
  EXPECT_EQ(MetricValue(*after, "veriface_rpc_requests_total", {{"method", "GetIdentity"}, {"code", "NOT_FOUND"}}),
            not_found + 1);
  EXPECT_GT(MetricValue(*after, "veriface_batch_size_count", {{"stage", "embed"}}), embedded);
  EXPECT_GT(MetricValue(*after, "veriface_rpc_duration_seconds_count", {{"method", "Verify"}}), 0);
  EXPECT_GT(MetricValue(*after, "veriface_faces_per_image_count", {}), 0);
  EXPECT_GT(MetricValue(*after, "veriface_batch_queue_wait_seconds_count", {{"stage", "detect"}}), 0);
  EXPECT_GT(MetricValue(*after, "veriface_batch_compute_seconds_count", {{"stage", "detect"}}), 0);
  EXPECT_THAT(*after, HasSubstr("veriface_batch_queue_depth{stage=\"embed\"}"));
  EXPECT_THAT(*after, HasSubstr("# TYPE veriface_rpc_requests_total counter"));
  EXPECT_THAT(*after, HasSubstr("# TYPE veriface_rpc_duration_seconds histogram"));
  EXPECT_EQ(MetricValue(*after, "veriface_build_info", {}), 1);
  EXPECT_EQ(MetricValue(*after, "veriface_model_info", {{"device", "cpu"}}), 1);
  v1::ModelInfo info;
  ASSERT_TRUE(server_->stub()->GetModelInfo(Context().get(), v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(MetricValue(*after, "veriface_gallery_identities", {}), info.gallery_identities());
  EXPECT_EQ(MetricValue(*after, "veriface_gallery_templates", {}), info.gallery_templates());
}

}  // namespace
}  // namespace veriface::testing
