// Named galleries and request ids through the real server on its default store (SQLite): the gallery
// RPCs, the `gallery` field on every call that names an identity, and retries that do not enrol twice.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

using ::testing::HasSubstr;

class GalleriesTest : public SharedServerTest {
 protected:
  grpc::Status Enroll(const std::string& gallery, const std::string& id, const std::string& image,
                      v1::EnrollResponse* response, const std::string& request_id = "") {
    v1::EnrollRequest request;
    request.set_gallery(gallery);
    request.set_identity_id(id);
    request.add_images(image);
    request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
    request.set_request_id(request_id);
    return server_->stub()->Enroll(Context().get(), request, response);
  }
  grpc::Status Create(const std::string& name, int64_t max_templates = 0, v1::GalleryInfo* out = nullptr) {
    v1::CreateGalleryRequest request;
    request.set_name(name);
    request.set_max_templates(max_templates);
    v1::GalleryInfo info;
    return server_->stub()->CreateGallery(Context().get(), request, out == nullptr ? &info : out);
  }
  v1::IdentifyResponse Identify(const std::string& gallery, const std::string& image) {
    v1::IdentifyRequest request;
    request.set_gallery(gallery);
    request.set_image(image);
    request.set_face_selection(v1::FACE_SELECTION_CENTRAL);
    request.set_include_below_threshold(true);
    v1::IdentifyResponse response;
    const grpc::Status s = server_->stub()->Identify(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
};

TEST_F(GalleriesTest, GalleriesKeepTheirPeopleApart) {
  v1::GalleryInfo made;
  ASSERT_TRUE(Create("tenant-a", 10, &made).ok());
  EXPECT_EQ(made.name(), "tenant-a");
  EXPECT_EQ(made.max_templates(), 10);
  ASSERT_TRUE(Create("tenant-b").ok());
  EXPECT_EQ(Create("tenant-a").error_code(), grpc::StatusCode::ALREADY_EXISTS);

  v1::EnrollResponse r;
  ASSERT_TRUE(Enroll("tenant-a", "p1", LfwImage("Tony_Blair", 1), &r).ok());
  EXPECT_EQ(r.gallery(), "tenant-a");
  const std::string tony_template = r.template_ids(0);
  ASSERT_TRUE(Enroll("tenant-b", "p1", LfwImage("Laura_Bush", 1), &r).ok());  // same id, other person
  EXPECT_NE(r.template_ids(0), tony_template);

  v1::IdentifyResponse a = Identify("tenant-a", LfwImage("Tony_Blair", 2));
  ASSERT_EQ(a.matches_size(), 1);
  EXPECT_TRUE(a.matches(0).match());
  EXPECT_EQ(a.gallery(), "tenant-a");
  EXPECT_EQ(a.index(), "flat-fp32") << "a small gallery is searched exactly";
  EXPECT_TRUE(a.exact());
  v1::IdentifyResponse b = Identify("tenant-b", LfwImage("Tony_Blair", 2));
  ASSERT_EQ(b.matches_size(), 1);
  EXPECT_FALSE(b.matches(0).match()) << "tenant-b's p1 is Laura Bush";
  EXPECT_EQ(Identify("", LfwImage("Tony_Blair", 2)).matches_size(), 0) << "the default gallery is empty";

  // Verify between identities of two galleries; Get and List by gallery.
  v1::VerifyRequest verify;
  verify.mutable_a()->set_identity_id("p1");
  verify.mutable_a()->set_gallery("tenant-a");
  verify.mutable_b()->set_image(LfwImage("Tony_Blair", 3));
  v1::VerifyResponse verdict;
  ASSERT_TRUE(server_->stub()->Verify(Context().get(), verify, &verdict).ok());
  EXPECT_TRUE(verdict.match());
  verify.mutable_a()->set_gallery("tenant-b");
  ASSERT_TRUE(server_->stub()->Verify(Context().get(), verify, &verdict).ok());
  EXPECT_FALSE(verdict.match()) << verdict.similarity() << " " << verdict.template_id_a();
  v1::GetIdentityRequest get;
  get.set_identity_id("p1");
  get.set_gallery("tenant-b");
  v1::Identity identity;
  ASSERT_TRUE(server_->stub()->GetIdentity(Context().get(), get, &identity).ok());
  EXPECT_EQ(identity.gallery(), "tenant-b");
  v1::ListIdentitiesRequest list;
  list.set_gallery("tenant-a");
  v1::ListIdentitiesResponse listed;
  ASSERT_TRUE(server_->stub()->ListIdentities(Context().get(), list, &listed).ok());
  EXPECT_EQ(listed.total_identities(), 1);

  v1::ListGalleriesResponse galleries;
  ASSERT_TRUE(server_->stub()->ListGalleries(Context().get(), v1::ListGalleriesRequest(), &galleries).ok());
  std::vector<std::string> names;
  for (const auto& g : galleries.galleries()) names.push_back(g.name());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"default", "tenant-a", "tenant-b"}));

  v1::DeleteGalleryRequest drop;
  drop.set_name("tenant-b");
  v1::GalleryInfo dropped;
  ASSERT_TRUE(server_->stub()->DeleteGallery(Context().get(), drop, &dropped).ok());
  EXPECT_EQ(dropped.templates(), 1);
  v1::IdentifyRequest gone;
  gone.set_gallery("tenant-b");
  gone.set_image(LfwImage("Tony_Blair", 2));
  v1::IdentifyResponse none;
  const grpc::Status s = server_->stub()->Identify(Context().get(), gone, &none);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("tenant-b"));
  drop.set_name("default");
  EXPECT_EQ(server_->stub()->DeleteGallery(Context().get(), drop, &dropped).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(GalleriesTest, BadGalleryNamesAreRefusedByField) {
  EXPECT_EQ(Create("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const grpc::Status bad = Create("../etc");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("gallery name"));
  EXPECT_EQ(Create(std::string(65, 'g')).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Create("x", -1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::EnrollResponse r;
  const grpc::Status unknown = Enroll("no-such-gallery", "p", LfwImage("Tony_Blair", 1), &r);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(), HasSubstr("no-such-gallery"));
  const grpc::Status malformed = Enroll("bad name", "p", LfwImage("Tony_Blair", 1), &r);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(malformed.error_message(), HasSubstr("gallery"));
}

TEST_F(GalleriesTest, ARetryWithTheSameRequestIdEnrolsOnce) {
  v1::EnrollResponse first, again;
  ASSERT_TRUE(Enroll("", "retry-me", LfwImage("Ariel_Sharon", 1), &first, "7f3c9a").ok());
  EXPECT_FALSE(first.replayed());
  ASSERT_TRUE(Enroll("", "retry-me", LfwImage("Ariel_Sharon", 1), &again, "7f3c9a").ok());
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(again.template_ids(0), first.template_ids(0));
  EXPECT_EQ(again.template_count(), 1) << "nothing was added";
  const grpc::Status reused = Enroll("", "someone-else", LfwImage("Ariel_Sharon", 1), &again, "7f3c9a");
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(reused.error_message(), HasSubstr("request id"));

  v1::DeleteIdentityRequest del;
  del.set_identity_id("retry-me");
  del.set_request_id("del-7f3c9a");
  v1::DeleteIdentityResponse deleted;
  ASSERT_TRUE(server_->stub()->DeleteIdentity(Context().get(), del, &deleted).ok());
  EXPECT_FALSE(deleted.replayed());
  ASSERT_TRUE(server_->stub()->DeleteIdentity(Context().get(), del, &deleted).ok()) << "a retry is answered";
  EXPECT_TRUE(deleted.replayed());
  EXPECT_EQ(deleted.templates_deleted(), 1);
}

}  // namespace
}  // namespace veriface::testing
