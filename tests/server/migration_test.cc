// Moving a deployment to another model end to end, with the real programs: a server on the default model
// enrols people (keeping their face crops), veriface-migrate re-embeds them with MobileFaceNet (imported
// here from the pinned weights) while that server keeps answering, switches the gallery over, and a server
// started on the new bundle finds the same people. With gallery.keep_face_crops off, the server and the
// tool name who needs re-enrolment, and the switch refuses until told to drop them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/bundle/pinned_mobilefacenet.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

CommandResult Migrate(const std::string& gallery, const std::string& model, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {VERIFACE_MIGRATE_BINARY, "--gallery", gallery, "--to-model", model};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, std::chrono::seconds(300));
}

grpc::Status Enroll(v1::Veriface::Stub& stub, const std::string& id, const std::string& person, int n) {
  v1::EnrollRequest request;
  request.set_identity_id(id);
  request.add_images(LfwImage(person, n));
  v1::EnrollResponse response;
  return stub.Enroll(Context().get(), request, &response);
}

v1::IdentifyResponse Identify(v1::Veriface::Stub& stub, const std::string& person, int n) {
  v1::IdentifyRequest request;
  request.set_image(LfwImage(person, n));
  request.set_top_k(2);
  request.set_include_below_threshold(true);
  v1::IdentifyResponse response;
  const grpc::Status status = stub.Identify(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

TEST(MigrationTest, AGalleryMovesToANewModelWithoutReEnrolment) {
  const TempDir dir;
  const std::string gallery = dir.File("g.db");
  const std::string mfn = dir.File("mfn");
  const auto spec = ImportPinnedMobileFaceNet(mfn, /*with_face_resnet=*/false);
  ASSERT_TRUE(spec.ok()) << spec.status();

  auto old_server = ServerProcess::Start(gallery);
  ASSERT_TRUE(old_server.ok()) << old_server.status();
  auto old_stub = (*old_server)->stub();
  ASSERT_TRUE(Enroll(*old_stub, "bush", "George_W_Bush", 1).ok());
  ASSERT_TRUE(Enroll(*old_stub, "serena", "Serena_Williams", 1).ok());
  ASSERT_TRUE(Enroll(*old_stub, "blair", "Tony_Blair", 1).ok());
  v1::GetIdentityRequest get;
  get.set_identity_id("bush");
  v1::Identity bush;
  ASSERT_TRUE(old_stub->GetIdentity(Context().get(), get, &bush).ok());
  EXPECT_EQ(bush.templates_without_face_crop(), 0);

  // Re-embedding while the old model serves, in two runs (the first stopped after one batch).
  const CommandResult first = Migrate(gallery, mfn, {"run", "--batch-size", "1", "--max-batches", "1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("re-embedded: 1\n"));
  EXPECT_EQ(Identify(*old_stub, "George_W_Bush", 2).matches(0).identity_id(), "bush");
  ASSERT_TRUE(Enroll(*old_stub, "bush", "George_W_Bush", 3).ok()) << "the old model still enrols";
  const CommandResult rest = Migrate(gallery, mfn, {"run"});
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_THAT(rest.out, HasSubstr("re-embedded: 4\n"));

  const CommandResult switched = Migrate(gallery, mfn, {"switch"});
  ASSERT_EQ(switched.exit_code, 0) << switched.err;
  EXPECT_THAT(switched.out, HasSubstr("switched to model " + spec->model_id));
  // The old server keeps answering from memory, but its enrolments are refused with a reason.
  const grpc::Status late = Enroll(*old_stub, "late", "Colin_Powell", 1);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << late.error_message();
  EXPECT_THAT(late.error_message(), HasSubstr("restart with that model"));
  EXPECT_EQ((*old_server)->Stop(), 0);

  ServerOptions options;
  options.model_dir = mfn;
  auto new_server = ServerProcess::Start(gallery, options);
  ASSERT_TRUE(new_server.ok()) << new_server.status();
  auto stub = (*new_server)->stub();
  for (const auto& [person, id] : {std::pair<std::string, std::string>{"George_W_Bush", "bush"},
                                   {"Serena_Williams", "serena"},
                                   {"Tony_Blair", "blair"}}) {
    const v1::IdentifyResponse found = Identify(*stub, person, 2);
    ASSERT_EQ(found.matches_size(), 2) << person;
    EXPECT_EQ(found.matches(0).identity_id(), id) << person;
    EXPECT_GT(found.matches(0).similarity(), found.matches(1).similarity() + 0.2) << person;
    // The template re-embedded from its crop is what enrolling the same photo with the new model gives.
    v1::VerifyRequest verify;
    verify.mutable_a()->set_image(LfwImage(person, 1));
    verify.mutable_b()->set_identity_id(id);
    v1::VerifyResponse same;
    const grpc::Status vs = stub->Verify(Context().get(), verify, &same);
    ASSERT_TRUE(vs.ok()) << vs.error_message();
    EXPECT_GT(same.similarity(), 0.97) << person;
  }
  ASSERT_TRUE(stub->GetIdentity(Context().get(), get, &bush).ok());
  EXPECT_EQ(bush.template_ids_size(), 2);
  EXPECT_TRUE(Enroll(*stub, "late", "Colin_Powell", 1).ok());
  EXPECT_EQ((*new_server)->Stop(), 0);
}

TEST(MigrationTest, WithoutStoredCropsTheServerAndTheToolNameWhoNeedsReEnrolment) {
  const TempDir dir;
  const std::string gallery = dir.File("g.db");
  const std::string mfn = dir.File("mfn");
  ASSERT_TRUE(ImportPinnedMobileFaceNet(mfn, /*with_face_resnet=*/false).ok());
  {
    auto server = ServerProcess::Start(gallery, {"--set", "gallery.keep_face_crops=false"});
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->stub();
    ASSERT_TRUE(Enroll(*stub, "bush", "George_W_Bush", 1).ok());
    v1::GetIdentityRequest get;
    get.set_identity_id("bush");
    v1::Identity bush;
    ASSERT_TRUE(stub->GetIdentity(Context().get(), get, &bush).ok());
    EXPECT_EQ(bush.templates_without_face_crop(), 1);
    EXPECT_EQ((*server)->Stop(), 0);
  }
  const CommandResult status = Migrate(gallery, mfn, {"status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("needs re-enrolment: gallery 'default' identity 'bush'"));
  const CommandResult refused = Migrate(gallery, mfn, {"switch"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("re-enrol them"));
  const CommandResult dropped = Migrate(gallery, mfn, {"switch", "--drop-templates-without-crop"});
  ASSERT_EQ(dropped.exit_code, 0) << dropped.err;
  EXPECT_THAT(dropped.out, HasSubstr("1 templates without a face crop dropped"));
}

}  // namespace
}  // namespace veriface::testing
