// The real server on a fusion bundle (dlib's ResNet and MobileFaceNet, imported here from the pinned weights):
// it serves it as it serves any bundle, with 320-D embeddings, enrolment, identification and verification.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/bundle/pinned_mobilefacenet.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

TEST(FusionServingTest, TheServerServesAFusionBundle) {
  const TempDir dir;
  const auto spec = ImportPinnedMobileFaceNet(dir.File("fused"), /*with_face_resnet=*/true);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ServerOptions server_options;
  server_options.model_dir = dir.File("fused");
  auto server = ServerProcess::Start(dir.File("g.db"), server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->stub();

  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(Context().get(), v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.model_id(), spec->model_id);
  EXPECT_EQ(info.embedding_dim(), 320);

  v1::EmbedRequest embed;
  embed.set_image(LfwImage("George_W_Bush", 1));
  v1::EmbedResponse e;
  ASSERT_TRUE(stub->Embed(Context().get(), embed, &e).ok());
  ASSERT_GE(e.faces_size(), 1);
  ASSERT_EQ(e.faces(0).embedding_size(), 320);
  double norm = 0;
  for (const float v : e.faces(0).embedding()) norm += v * v;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);

  v1::EnrollRequest enroll;
  enroll.set_identity_id("bush");
  enroll.add_images(LfwImage("George_W_Bush", 1));
  v1::EnrollResponse enrolled;
  const grpc::Status es = stub->Enroll(Context().get(), enroll, &enrolled);
  ASSERT_TRUE(es.ok()) << es.error_message();

  v1::IdentifyRequest identify;
  identify.set_image(LfwImage("George_W_Bush", 2));
  identify.set_include_below_threshold(true);
  v1::IdentifyResponse found;
  ASSERT_TRUE(stub->Identify(Context().get(), identify, &found).ok());
  ASSERT_EQ(found.matches_size(), 1);
  EXPECT_EQ(found.matches(0).identity_id(), "bush");

  v1::VerifyRequest same;
  same.mutable_a()->set_image(LfwImage("George_W_Bush", 1));
  same.mutable_b()->set_image(LfwImage("George_W_Bush", 2));
  v1::VerifyResponse s;
  ASSERT_TRUE(stub->Verify(Context().get(), same, &s).ok());
  v1::VerifyRequest different;
  different.mutable_a()->set_image(LfwImage("George_W_Bush", 1));
  different.mutable_b()->set_image(LfwImage("Serena_Williams", 1));
  v1::VerifyResponse d;
  ASSERT_TRUE(stub->Verify(Context().get(), different, &d).ok());
  EXPECT_GT(s.similarity(), d.similarity() + 0.3);
  EXPECT_NEAR(s.similarity(), found.matches(0).similarity(), 1e-4);
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->log();
}

}  // namespace
}  // namespace veriface::testing
