// The serving core at the proto level: arbitrary Embed, Verify, Identify, Enroll, Delete, Get, List,
// gallery and report requests, in any order, translated as the server translates them and answered by a
// FaceService over the fake engine (tests/serving/fake_engine.h) and a real SQLite gallery. No request may
// crash it or get INTERNAL or UNKNOWN (those mean a fault of ours, not the caller's), and every answer
// translates back to its proto.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "core/common/status_macros.h"
#include "core/gallery/gallery.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "core/serving/face_service.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/service_frames.h"
#include "proto/veriface/v1/veriface.pb.h"
#include "server/translate.h"
#include "tests/serving/fake_engine.h"

namespace veriface::fuzz {
namespace {

namespace v1 = veriface::v1;

ModelSpec FakeSpec() {
  ModelSpec spec;
  spec.model_id = "fuzz-model";
  spec.thresholds = {{"best_accuracy", 0.9}, {"far_1e-3", 0.95}};
  spec.default_operating_point = "best_accuracy";
  return spec;
}

// One service for the whole run, its gallery in a fresh folder removed at exit. Small limits keep the
// gallery small however many enrolments the fuzzer makes.
FaceService& Service() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "veriface-service-fuzz-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(dir); });
    return std::filesystem::path(pattern);
  }();
  static const std::unique_ptr<FaceService> service = [] {
    // Mutated requests are full of invalid UTF-8 in string fields, which protobuf refuses (as it should)
    // and logs each time; the log would bury the fuzzer's own output.
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    auto engine = std::make_unique<testing::FakeEngine>(FakeSpec());
    auto store = SqliteGalleryStore::Open((dir / "gallery.db").string());
    if (!store.ok()) std::abort();
    GalleryLimits limits;
    limits.max_templates = 256;
    limits.max_templates_per_identity = 8;
    auto gallery = Gallery::Open(*std::move(store), "fuzz-model", testing::kFakeDim, limits);
    if (!gallery.ok()) std::abort();
    FaceServiceOptions options;
    options.quality.enroll_min = QualityLevel::kLow;  // the fake faces are LOW by construction
    options.limits.max_images_per_enroll = 4;
    auto created = FaceService::Create(options, std::move(engine), *std::move(gallery), nullptr);
    if (!created.ok()) std::abort();
    return *std::move(created);
  }();
  return *service;
}

// VERIFACE_FUZZ_VERBOSE=1 prints every call's status, to see what a seed or a crash input reaches.
void CheckStatus(const absl::Status& status) {
  static const bool verbose = std::getenv("VERIFACE_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "  -> %s\n", status.ToString().c_str());
  const bool ours = status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown;
  if (ours) std::fprintf(stderr, "status: %s\n", status.ToString().c_str());
  FUZZ_CHECK(!ours, "a request got INTERNAL or UNKNOWN");
}

// Parses `bytes` as a `Request`, runs `call` on it and checks its status.
template <typename Request, typename Fn>
void Run(std::string_view bytes, Fn call) {
  Request request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  CheckStatus(call(request));
}

// The answer's status, after translating an OK answer into `Response` as the server would.
template <typename Response, typename Answer>
absl::Status Answered(const absl::StatusOr<Answer>& answer) {
  if (answer.ok()) {
    Response response;
    server::ToProto(*answer, &response);
  }
  return answer.status();
}

void RunFrame(const Frame& frame, FaceService& service) {
  using server::FromProto;
  const CallBudget budget;
  switch (frame.call) {
    case Call::kEmbed:
      return Run<v1::EmbedRequest>(frame.request, [&](const auto& r) {
        return Answered<v1::EmbedResponse>(service.Embed(FromProto(r), budget));
      });
    case Call::kVerify:
      return Run<v1::VerifyRequest>(frame.request, [&](const auto& r) -> absl::Status {
        VF_ASSIGN_OR_RETURN(const auto query, FromProto(r));
        return Answered<v1::VerifyResponse>(service.Verify(query, budget));
      });
    case Call::kIdentify:
      return Run<v1::IdentifyRequest>(frame.request, [&](const auto& r) -> absl::Status {
        VF_ASSIGN_OR_RETURN(const auto query, FromProto(r));
        return Answered<v1::IdentifyResponse>(service.Identify(query, budget));
      });
    case Call::kEnroll:
      return Run<v1::EnrollRequest>(frame.request, [&](const auto& r) -> absl::Status {
        VF_ASSIGN_OR_RETURN(const auto query, FromProto(r));
        VF_RETURN_IF_ERROR(Answered<v1::EnrollResponse>(service.Enroll(query, budget)));
        // An acknowledged enrolment is there to read back.
        IdentityRef ref;
        ref.gallery = query.gallery;
        ref.identity_id = query.identity_id;
        FUZZ_CHECK(service.Get(ref).ok(), "an acknowledged enrolment cannot be read back");
        return absl::OkStatus();
      });
    case Call::kDeleteIdentity:
      return Run<v1::DeleteIdentityRequest>(frame.request, [&](const auto& r) -> absl::Status {
        const DeleteQuery query = FromProto(r);
        VF_RETURN_IF_ERROR(Answered<v1::DeleteIdentityResponse>(service.Delete(query)));
        FUZZ_CHECK(!service.Get(query.identity).ok(), "a deleted identity can still be read");
        return absl::OkStatus();
      });
    case Call::kGetIdentity:
      return Run<v1::GetIdentityRequest>(
          frame.request, [&](const auto& r) { return Answered<v1::Identity>(service.Get(FromProto(r))); });
    case Call::kListIdentities:
      return Run<v1::ListIdentitiesRequest>(frame.request, [&](const auto& r) {
        return Answered<v1::ListIdentitiesResponse>(service.List(r.gallery(), r.page_size(), r.page_token()));
      });
    case Call::kCreateGallery:
      return Run<v1::CreateGalleryRequest>(frame.request, [&](const auto& r) {
        // Bounded, so that the fuzzer cannot fill the store with galleries.
        if (service.ListGalleries().size() >= 8) return absl::OkStatus();
        return Answered<v1::GalleryInfo>(service.CreateGallery(r.name(), r.max_templates()));
      });
    case Call::kDeleteGallery:
      return Run<v1::DeleteGalleryRequest>(
          frame.request, [&](const auto& r) { return Answered<v1::GalleryInfo>(service.DeleteGallery(r.name())); });
    case Call::kGalleryReport:
      return Run<v1::GalleryReportRequest>(
          frame.request, [&](const auto& r) { return Answered<v1::GalleryReport>(service.Report(FromProto(r))); });
    case Call::kCount:
      break;
  }
}

}  // namespace
}  // namespace veriface::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veriface::FaceService& service = veriface::fuzz::Service();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const auto& frame : veriface::fuzz::ReadFrames(input)) veriface::fuzz::RunFrame(frame, service);
  return 0;
}
