// FaceService's request logic in-process, over the fake engine (fake_engine.h) and a real SQLite
// gallery: face choice, thresholds, the sides of a Verify, enrolment limits, and what reaches the
// observer. Milliseconds per test; the real networks behind the real server are tests/server's.

#include "core/serving/face_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "core/common/retry_after.h"
#include "core/gallery/sqlite_gallery_store.h"
#include "core/serving/call_slots.h"
#include "core/serving/pixel_budget.h"
#include "tests/serving/fake_engine.h"
#include "tests/testing/temp_dir.h"

namespace veriface::testing {
namespace {

using ::testing::ElementsAre;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

const cv::Scalar kRed(255, 0, 0), kGreen(0, 255, 0), kBlue(0, 0, 255), kDarkRed(120, 0, 0);

class CountingObserver final : public ServiceObserver {
 public:
  void OnFacesDetected(int faces) override { faces_seen += faces; }
  void OnCallsInProgress(int calls) override {
    calls_in_progress = calls;
    most_calls_in_progress = std::max(most_calls_in_progress.load(), calls);
  }
  void OnGallerySize(int64_t identities, int64_t templates, int64_t /*galleries*/) override {
    last_identities = identities;
    last_templates = templates;
  }
  std::atomic<int> faces_seen{0};
  std::atomic<int> calls_in_progress{0}, most_calls_in_progress{0};
  std::atomic<int64_t> last_identities{-1}, last_templates{-1};
};

ModelSpec Spec(bool calibrated = true) {
  ModelSpec spec;
  spec.model_id = "fake-model";
  if (calibrated) spec.thresholds = {{"best_accuracy", 0.9}, {"far_1e-3", 0.95}};
  spec.default_operating_point = "best_accuracy";
  return spec;
}

// The fake engine's faces are flat squares with landmarks in a row and low scores: LOW quality by
// construction. Tests other than the quality ones enrol them all the same.
FaceServiceOptions FakeFaceOptions() {
  FaceServiceOptions options;
  options.quality.enroll_min = QualityLevel::kLow;
  return options;
}

class FaceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(Spec()); }

  void Start(ModelSpec spec, FaceServiceOptions options = FakeFaceOptions(), GalleryLimits limits = {}) {
    service_.reset();
    auto engine = std::make_unique<FakeEngine>(std::move(spec));
    engine_ = engine.get();
    auto store = SqliteGalleryStore::Open(dir_.File("gallery.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    auto gallery = Gallery::Open(*std::move(store), engine->spec().model_id, kFakeDim, limits);
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    observer_ = std::make_shared<CountingObserver>();
    auto service = FaceService::Create(options, std::move(engine), *std::move(gallery), observer_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
  }

  // Enrols one image of one square of `colour`.
  void EnrollSquare(const std::string& id, const cv::Scalar& colour, std::map<std::string, std::string> meta = {}) {
    const std::string png = FaceImage({{colour, 10, 10}});
    EnrollQuery q;
    q.identity_id = id;
    q.metadata = std::move(meta);
    q.images = {png};
    const auto a = service_->Enroll(q, {});
    ASSERT_TRUE(a.ok()) << a.status();
  }

  static FaceInput ImageSide(const std::string& png, FaceChoice choice = FaceChoice::kDefault) {
    FaceInput side;
    side.kind = FaceInput::Kind::kImage;
    side.image = ImageInput{png, choice, 0};
    return side;
  }
  static FaceInput IdentitySide(const std::string& id) {
    FaceInput side;
    side.kind = FaceInput::Kind::kIdentity;
    side.identity_id = id;
    return side;
  }

  TempDir dir_;
  FakeEngine* engine_ = nullptr;
  std::shared_ptr<CountingObserver> observer_;
  std::unique_ptr<FaceService> service_;
};

TEST_F(FaceServiceTest, VerifyMatchesOnePersonAndNotTwo) {
  const std::string red_a = FaceImage({{kRed, 10, 10}}), red_b = FaceImage({{kRed, 100, 50}});
  const std::string green = FaceImage({{kGreen, 10, 10}});
  const auto same = service_->Verify({ImageSide(red_a), ImageSide(red_b), {}}, {});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_NEAR(same->similarity, 1.0, 1e-6);
  EXPECT_TRUE(same->match);
  EXPECT_EQ(same->threshold.source, "best_accuracy");
  EXPECT_DOUBLE_EQ(same->threshold.value, 0.9);
  EXPECT_EQ(same->model_id, "fake-model");
  ASSERT_TRUE(same->face_a && same->face_b);
  EXPECT_EQ(same->face_b->face.box.x1, 100);
  EXPECT_EQ(same->face_b->image_width, 200);
  EXPECT_EQ(engine_->faces_embedded(), 2);  // both sides in one Embed call's worth

  const auto different = service_->Verify({ImageSide(red_a), ImageSide(green), {}}, {});
  ASSERT_TRUE(different.ok()) << different.status();
  EXPECT_NEAR(different->similarity, 0.0, 1e-6);
  EXPECT_FALSE(different->match);
}

TEST_F(FaceServiceTest, VerifyChoosesTheRequestedFace) {
  // Two faces: dark red (larger score? no: dimmer, so lower score) on the left, green in the centre.
  const std::string two = FaceImage({{kDarkRed, 0, 0}, {kGreen, 80, 40}});
  const std::string green = FaceImage({{kGreen, 10, 10}});
  const auto central = service_->Verify({ImageSide(two, FaceChoice::kCentral), ImageSide(green), {}}, {});
  ASSERT_TRUE(central.ok()) << central.status();
  EXPECT_TRUE(central->match);
  EXPECT_EQ(central->face_a->faces_detected, 2);
  const auto best = service_->Verify({ImageSide(two, FaceChoice::kHighestScore), ImageSide(green), {}}, {});
  ASSERT_TRUE(best.ok()) << best.status();
  EXPECT_TRUE(best->match);  // green outscores dark red
  const auto single = service_->Verify({ImageSide(two, FaceChoice::kSingle), ImageSide(green), {}}, {});
  EXPECT_EQ(single.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(single.status().message(), HasSubstr("a.image: 2 faces found where exactly one is needed"));
  const auto none = service_->Verify({ImageSide(green), ImageSide(FaceImage({})), {}}, {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.status().message(), HasSubstr("b.image: no face found in the 200x120 image"));
}

TEST_F(FaceServiceTest, VerifyRefusesBadSidesBeforeAnyCompute) {
  FaceInput short_embedding;
  short_embedding.kind = FaceInput::Kind::kEmbedding;
  short_embedding.embedding = {1, 0};
  const std::string red = FaceImage({{kRed, 10, 10}});
  auto s = service_->Verify({ImageSide(red), short_embedding, {}}, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("b.embedding has 2 values; the model's embeddings have 3"));
  s = service_->Verify({ImageSide(red), FaceInput{}, {}}, {}).status();
  EXPECT_THAT(s.message(), HasSubstr("b is empty"));
  s = service_->Verify({IdentitySide("nobody"), ImageSide(red), {}}, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("a: "));
  s = service_->Verify({IdentitySide(""), ImageSide(red), {}}, {}).status();
  EXPECT_THAT(s.message(), HasSubstr("a.identity_id is empty"));
  s = service_->Verify({ImageSide("not an image"), ImageSide(red), {}}, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("a.image: "));
  EXPECT_EQ(engine_->images_detected(), 0);
}

TEST_F(FaceServiceTest, VerifyAgainstEmbeddingsAndIdentities) {
  EnrollSquare("red", kRed);
  EnrollSquare("green", kGreen);
  FaceInput red_vector;
  red_vector.kind = FaceInput::Kind::kEmbedding;
  red_vector.embedding = {2, 0, 0};  // scaled to unit length by the service
  const auto vs_identity = service_->Verify({red_vector, IdentitySide("red"), {}}, {});
  ASSERT_TRUE(vs_identity.ok()) << vs_identity.status();
  EXPECT_TRUE(vs_identity->match);
  EXPECT_FALSE(vs_identity->template_b.empty());
  EXPECT_TRUE(vs_identity->template_a.empty());
  const auto identities = service_->Verify({IdentitySide("red"), IdentitySide("green"), {}}, {});
  ASSERT_TRUE(identities.ok()) << identities.status();
  EXPECT_FALSE(identities->match);
  EXPECT_FALSE(identities->template_a.empty());
  EXPECT_FALSE(identities->template_b.empty());
  EXPECT_EQ(engine_->images_detected(), 2);  // the two enrolments only
}

TEST_F(FaceServiceTest, ThresholdsResolveFromTheRequestTheModelOrTheFallback) {
  const std::string red = FaceImage({{kRed, 10, 10}});
  ThresholdChoice value{ThresholdChoice::Kind::kValue, 0.5, ""};
  auto a = service_->Verify({ImageSide(red), ImageSide(red), value}, {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->threshold.source, "request");
  EXPECT_DOUBLE_EQ(a->threshold.value, 0.5);
  ThresholdChoice point{ThresholdChoice::Kind::kOperatingPoint, 0, "far_1e-3"};
  a = service_->Verify({ImageSide(red), ImageSide(red), point}, {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->threshold.source, "far_1e-3");
  EXPECT_DOUBLE_EQ(a->threshold.value, 0.95);
  value.value = 1.5;
  EXPECT_THAT(service_->Verify({ImageSide(red), ImageSide(red), value}, {}).status().message(),
              HasSubstr("threshold.threshold is 1.5; it must be in [-1, 1]"));
  point.operating_point = "far_1e-9";
  EXPECT_THAT(service_->Verify({ImageSide(red), ImageSide(red), point}, {}).status().message(),
              HasSubstr("is not one of the model's (best_accuracy, far_1e-3)"));

  FaceServiceOptions options = FakeFaceOptions();
  options.fallback_threshold = 0.42;
  Start(Spec(/*calibrated=*/false), options);
  EXPECT_EQ(service_->default_threshold().source, "server-fallback");
  a = service_->Verify({ImageSide(red), ImageSide(red), {}}, {});
  ASSERT_TRUE(a.ok());
  EXPECT_DOUBLE_EQ(a->threshold.value, 0.42);
  EXPECT_THAT(service_->Verify({ImageSide(red), ImageSide(red), point}, {}).status().message(),
              HasSubstr("it has none calibrated"));
}

TEST_F(FaceServiceTest, EnrollIdentifyDeleteRoundTrip) {
  EnrollSquare("red", kRed, {{"team", "a"}});
  EnrollSquare("green", kGreen);
  EXPECT_EQ(observer_->last_identities, 2);
  EXPECT_EQ(observer_->last_templates, 2);

  IdentifyQuery q;
  const std::string probe = FaceImage({{kRed, 50, 30}});
  q.image = ImageInput{probe, FaceChoice::kDefault, 0};
  auto found = service_->Identify(q, {});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->candidates.size(), 1U);  // green is below the threshold
  EXPECT_EQ(found->candidates[0].identity_id, "red");
  EXPECT_TRUE(found->candidates[0].match);
  EXPECT_EQ(found->candidates[0].metadata.at("team"), "a");
  EXPECT_EQ(found->face.face.box.x1, 50);
  q.include_below_threshold = true;
  found = service_->Identify(q, {});
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->candidates.size(), 2U);
  EXPECT_FALSE(found->candidates[1].match);
  q.top_k = 101;
  EXPECT_THAT(service_->Identify(q, {}).status().message(), HasSubstr("top_k is 101; it must be 0 (meaning 5) to 100"));

  const auto deleted = service_->Delete(DeleteQuery{{"", "red"}, ""});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->templates_deleted, 1);
  EXPECT_EQ(observer_->last_identities, 1);
  EXPECT_EQ(service_->Get({"", "red"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(service_->Delete(DeleteQuery{{"", "red"}, ""}).status().code(), absl::StatusCode::kNotFound);
  const auto list = service_->List("", 0, "");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->total_identities, 1);
  ASSERT_EQ(list->page.identities.size(), 1U);
  EXPECT_EQ(list->page.identities[0].record.identity_id, "green");
  EXPECT_THAT(service_->List("", 1001, "").status().message(), HasSubstr("page_size is 1001"));
}

TEST_F(FaceServiceTest, EnrollNeedsExactlyOneFaceUnlessAskedToChoose) {
  const std::string one = FaceImage({{kBlue, 10, 10}}), two = FaceImage({{kRed, 0, 0}, {kBlue, 120, 60}});
  EnrollQuery q;
  q.identity_id = "blue";
  q.images = {one, two};  // views: the strings must outlive the query
  auto s = service_->Enroll(q, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("images[1]: 2 faces found"));
  EXPECT_FALSE(service_->Get({"", "blue"}).ok());  // all or nothing
  q.choice = FaceChoice::kCentral;
  const auto enrolled = service_->Enroll(q, {});
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  EXPECT_EQ(enrolled->template_count, 2);
  EXPECT_EQ(enrolled->template_ids.size(), 2U);
  EXPECT_EQ(enrolled->faces[1].faces_detected, 2);
}

TEST_F(FaceServiceTest, EnrollLimitsRefuseBeforeCompute) {
  FaceServiceOptions options = FakeFaceOptions();
  options.limits.max_images_per_enroll = 2;
  GalleryLimits limits;
  limits.max_templates = 1;
  Start(Spec(), options, limits);
  const std::string red = FaceImage({{kRed, 10, 10}});
  EnrollQuery q;
  q.identity_id = "red";
  q.images = {red, red};
  auto s = service_->Enroll(q, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("would pass gallery.max_templates (1)"));
  q.images = {red, red, red};
  s = service_->Enroll(q, {}).status();
  EXPECT_THAT(s.message(), HasSubstr("images has 3 entries; at most 2 per request"));
  q.images = {};
  EXPECT_THAT(service_->Enroll(q, {}).status().message(), HasSubstr("images is empty"));
  q.images = {red};
  q.identity_id = std::string("bad\x01id");
  EXPECT_THAT(service_->Enroll(q, {}).status().message(), HasSubstr("identity_id"));
  EXPECT_EQ(engine_->images_detected(), 0);
}

TEST_F(FaceServiceTest, EmbedKeepsTheMostConfidentFaces) {
  const std::string three = FaceImage({{kDarkRed, 0, 0}, {kGreen, 60, 0}, {kBlue, 120, 60}});
  EmbedQuery q{three, 0, 2, false};
  const auto a = service_->Embed(q, {});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->faces.size(), 2U);
  EXPECT_EQ(a->faces_omitted, 1);
  EXPECT_EQ(a->faces[0].embedding.size(), 3U);
  EXPECT_GT(a->faces[0].face.score, 0.3F);  // the dark red square is the one left out
  EXPECT_EQ(observer_->faces_seen, 3);
  q.skip_embeddings = true;
  const auto boxes = service_->Embed(q, {});
  ASSERT_TRUE(boxes.ok());
  EXPECT_TRUE(boxes->faces[0].embedding.empty());
  EXPECT_EQ(engine_->faces_embedded(), 2);
  q.max_faces = 33;
  EXPECT_THAT(service_->Embed(q, {}).status().message(), HasSubstr("max_faces is 33; it must be 0"));
}

TEST_F(FaceServiceTest, DetectionOptionsAndEmptyImages) {
  const std::string red = FaceImage({{kRed, 10, 10}});
  EmbedQuery q{red, 40, 0, true};
  ASSERT_TRUE(service_->Embed(q, {}).ok());
  EXPECT_EQ(engine_->last_min_face_size(), 40);
  q.min_face_size = 5;
  EXPECT_THAT(service_->Embed(q, {}).status().message(),
              HasSubstr("image.detection.min_face_size is 5; it must be 0 (the model's default, 20) or between 12"));
  q.image = {};
  EXPECT_THAT(service_->Embed(q, {}).status().message(), HasSubstr("image: the image is empty (0 bytes)"));
}

TEST_F(FaceServiceTest, ASaturatedEngineRefusesAtOnce) {
  engine_->set_capacity(absl::ResourceExhaustedError("queue is full"));
  const std::string red = FaceImage({{kRed, 10, 10}});
  EXPECT_EQ(service_->Verify({ImageSide(red), ImageSide(red), {}}, {}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(engine_->images_detected(), 0);
}

TEST_F(FaceServiceTest, DecodedPixelsInFlightAreBounded) {
  // Room for one 200x120 image at a time (24000 pixels), not two.
  FaceServiceOptions options = FakeFaceOptions();
  options.limits.max_inflight_pixels = 30'000;
  options.limits.max_image_pixels = 30'000;
  Start(Spec(), options);
  const std::string red = FaceImage({{kRed, 10, 10}});
  EmbedQuery q;
  q.image = red;

  engine_->HoldDetections();
  std::thread first([&] { EXPECT_TRUE(service_->Embed(q, {}).ok()); });
  while (engine_->detections_held() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The first call holds its image: the second is refused at once, before it decodes anything.
  const auto refused = service_->Embed(q, {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("limits.max_inflight_pixels"));
  EXPECT_TRUE(RetryAfter(refused.status()).has_value()) << "the refusal says when to come back";
  EXPECT_EQ(engine_->detections_held(), 1);
  engine_->ReleaseDetections();
  first.join();
  // Its pixels went back with it.
  EXPECT_TRUE(service_->Embed(q, {}).ok());
  // A request that alone needs more than the whole budget is the caller's to change, not to retry.
  const auto too_much = service_->Verify({ImageSide(red), ImageSide(red), {}}, {});
  EXPECT_EQ(too_much.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_much.status().message(), HasSubstr("this request's 2 images would need"));
}

TEST_F(FaceServiceTest, CallsDoingModelWorkAreBoundedAndRefusedWithAHint) {
  FaceServiceOptions options = FakeFaceOptions();
  options.limits.max_concurrent_calls = 1;
  Start(Spec(), options);
  EnrollSquare("red", kRed);
  const std::string red = FaceImage({{kRed, 10, 10}});
  EmbedQuery q;
  q.image = red;
  const auto embedded = service_->Embed(q, {});
  ASSERT_TRUE(embedded.ok() && embedded->faces.size() == 1) << embedded.status();
  const std::vector<float> red_embedding = embedded->faces[0].embedding;

  engine_->HoldDetections();
  std::thread first([&] { EXPECT_TRUE(service_->Embed(q, {}).ok()); });
  while (engine_->detections_held() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(observer_->calls_in_progress, 1);
  // The one slot is taken: a second image call is refused at once, before the engine sees it.
  const absl::Status refused = service_->Verify({ImageSide(red), IdentitySide("red"), {}}, {}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("its limit of 1 calls at once (limits.max_concurrent_calls)"));
  ASSERT_TRUE(RetryAfter(refused).has_value()) << "the refusal says when to come back";
  EXPECT_GE(RetryAfter(refused)->count(), 5);
  EXPECT_EQ(engine_->detections_held(), 1);
  // A call with no image to search takes no slot.
  FaceInput embedding_side;
  embedding_side.kind = FaceInput::Kind::kEmbedding;
  embedding_side.embedding = red_embedding;
  const auto no_image = service_->Verify({embedding_side, IdentitySide("red"), {}}, {});
  ASSERT_TRUE(no_image.ok()) << no_image.status();
  EXPECT_TRUE(no_image->match);

  engine_->ReleaseDetections();
  first.join();
  EXPECT_EQ(observer_->calls_in_progress, 0) << "the slot went back with the call";
  EXPECT_EQ(observer_->most_calls_in_progress, 1);
  EXPECT_TRUE(service_->Verify({ImageSide(red), IdentitySide("red"), {}}, {}).ok());
}

TEST(CallSlotsTest, TheMoreCallersWaitTheLaterEachIsToldToComeBack) {
  CallSlots slots(1);
  auto held = slots.Take();
  ASSERT_TRUE(held.ok());
  // No slot has been given back yet: one frees every 100 ms (the first hint), and four callers are
  // allowed back per slot freed, so the fifth and later callers waiting push each new one later.
  std::vector<int64_t> hints;
  for (int i = 0; i < 12; ++i) hints.push_back(RetryAfter(slots.Take().status()).value_or(0ms).count());
  EXPECT_EQ(hints[0], 100);
  EXPECT_EQ(hints[4], 100);
  EXPECT_EQ(hints[8], 200) << "8 callers waiting: two slots' worth of returns ahead";
  EXPECT_EQ(hints[11], 275);
  EXPECT_TRUE(std::is_sorted(hints.begin(), hints.end()));
  // Once their waits are over they are forgotten: the hint falls back.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(slots.RetryHint().count(), 100);
}

TEST(CallSlotsTest, TakesUpToTheBoundAndHintsFromTheTimeSlotsAreHeld) {
  std::vector<int> changes;
  CallSlots slots(2, [&](int in_use) { changes.push_back(in_use); });
  {
    auto a = slots.Take();
    auto b = slots.Take();
    ASSERT_TRUE(a.ok() && b.ok());
    const absl::Status third = slots.Take().status();
    EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(RetryAfter(third), std::chrono::milliseconds(100)) << "no call has finished yet: the first hint";
    EXPECT_THAT(third.message(), HasSubstr("retry in 100 ms"));
    auto moved = *std::move(a);  // a moved slot is given back once, by its new owner
    EXPECT_EQ(slots.in_use(), 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  EXPECT_EQ(slots.in_use(), 0);
  EXPECT_THAT(changes, ElementsAre(1, 2, 1, 0));
  // Two slots each held about 40 ms: one frees about every 20 ms.
  EXPECT_GE(slots.RetryHint().count(), 20);
  EXPECT_LT(slots.RetryHint().count(), 1000);
  CallSlots unbounded(0);
  std::vector<CallSlots::Slot> many;
  for (int i = 0; i < 1000; ++i) {
    auto slot = unbounded.Take();
    ASSERT_TRUE(slot.ok());
    many.push_back(*std::move(slot));
  }
  EXPECT_EQ(unbounded.in_use(), 1000);
}

TEST_F(FaceServiceTest, LargeImagesAreSearchedOnASmallerCopyAndAnsweredAtFullSize) {
  FaceServiceOptions options = FakeFaceOptions();
  options.limits.detect_max_pixels = 24'000;  // a 400x240 image is searched at 200x120
  Start(Spec(), options);
  const std::string red = FaceImage({{kRed, 200, 100}}, 400, 240);
  EmbedQuery q;
  q.image = red;
  const auto answer = service_->Embed(q, {});
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->image_width, 400);
  ASSERT_EQ(answer->faces.size(), 1u);
  EXPECT_NEAR(answer->faces[0].face.box.x1, 200, 2) << "in the full image's pixels";
  EXPECT_NEAR(answer->faces[0].face.box.y1, 100, 2);
  EXPECT_EQ(engine_->last_min_face_size(), 20) << "the copy is searched at the model's minimum face";
  // Nothing found: the message gives the smallest face searched for in the full image.
  const std::string empty = FaceImage({}, 400, 240);
  VerifyQuery v{ImageSide(empty), ImageSide(empty), {}};
  EXPECT_THAT(service_->Verify(v, {}).status().message(), HasSubstr("faces smaller than 40 pixels"));
}

TEST(PixelBudgetTest, ReservationsReleaseOnceAndDrainedBurstsAreTrimmed) {
  PixelBudget budget(1000, /*trim_after_pixels=*/1500);
  {
    auto a = budget.Reserve(600, "a");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(budget.Reserve(500, "b").status().code(), absl::StatusCode::kResourceExhausted);
    auto moved = *std::move(a);  // a moved reservation is released once, by its new owner
    EXPECT_EQ(budget.in_use(), 600);
    auto b = budget.Reserve(400, "b");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(budget.in_use(), 1000);
  }
  EXPECT_EQ(budget.in_use(), 0);
  EXPECT_EQ(budget.trims(), 0) << "1000 pixels released: below the trim threshold";
  { auto c = budget.Reserve(900, "c"); }
  for (int i = 0; i < 200 && budget.trims() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(budget.trims(), 1) << "1900 pixels released and the budget drained: freed memory is handed back";
  EXPECT_EQ(budget.Reserve(1001, "d").status().code(), absl::StatusCode::kInvalidArgument);
  PixelBudget unbounded(0);
  EXPECT_TRUE(unbounded.Reserve(int64_t{1} << 40, "e").ok());
}

TEST_F(FaceServiceTest, ShutdownReachesTheEngine) {
  service_->Shutdown();
  EXPECT_TRUE(engine_->shut_down());
  const std::string red = FaceImage({{kRed, 10, 10}});
  EXPECT_EQ(service_->Verify({ImageSide(red), ImageSide(red), {}}, {}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(FaceServiceTest, QualityIsReportedAndEnforcedWhereAsked) {
  Start(Spec(), FaceServiceOptions{});  // the server's defaults: enrolment needs MEDIUM
  const std::string red = FaceImage({{kRed, 10, 10}});
  EnrollQuery q;
  q.identity_id = "red";
  q.images = {red};
  const absl::Status refused = service_->Enroll(q, {}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(),
              HasSubstr("images[0]: the face's quality is LOW, below the MEDIUM enrolment requires"));
  EXPECT_THAT(refused.message(), HasSubstr("LOW_DETECTOR_SCORE"));
  EXPECT_THAT(refused.message(), HasSubstr("QUALITY_LEVEL_LOW"));
  EXPECT_EQ(engine_->faces_embedded(), 0) << "a refused face is not embedded";
  EXPECT_EQ(service_->gallery().template_count(), 0);

  q.min_quality = QualityLevel::kLow;  // the request lowers the bar
  const auto enrolled = service_->Enroll(q, {});
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  ASSERT_EQ(enrolled->faces.size(), 1U);
  EXPECT_EQ(enrolled->faces[0].quality.level, QualityLevel::kLow);
  EXPECT_FALSE(enrolled->faces[0].quality.issues.empty());

  // Probes are accepted at any level unless the request asks for more.
  IdentifyQuery probe;
  probe.image = ImageInput{red, FaceChoice::kDefault, 0};
  const auto found = service_->Identify(probe, {});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->face.quality.level, QualityLevel::kLow);
  probe.image.min_quality = QualityLevel::kMedium;
  const absl::Status strict = service_->Identify(probe, {}).status();
  EXPECT_EQ(strict.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(strict.message(), HasSubstr("image: the face's quality is LOW, below the MEDIUM this request asks for"));
  FaceInput side = ImageSide(red);
  side.image.min_quality = QualityLevel::kHigh;
  EXPECT_THAT(service_->Verify({side, ImageSide(red), {}}, {}).status().message(),
              HasSubstr("a.image: the face's quality"));

  const auto embedded = service_->Embed(EmbedQuery{red, 0, 0, true}, {});
  ASSERT_TRUE(embedded.ok());
  ASSERT_EQ(embedded->faces.size(), 1U);
  EXPECT_EQ(embedded->faces[0].quality.level, QualityLevel::kLow);
  EXPECT_FALSE(embedded->faces[0].quality.issues.empty());
}

// Random colours: every embedding lies in the positive octant, so impostors are far more alike than the
// fake model's bundle thresholds assume: just what a gallery calibration is for.
TEST_F(FaceServiceTest, TheGalleryReportAndTheGalleryCalibratedThreshold) {
  FaceServiceOptions options = FakeFaceOptions();
  options.gallery_calibration.enabled = true;
  options.gallery_calibration.operating_point = "far_1e-3";
  Start(Spec(), options);
  const auto too_few = service_->Report(GalleryReportQuery{});
  EXPECT_EQ(too_few.status().code(), absl::StatusCode::kFailedPrecondition) << too_few.status();
  ThresholdChoice point;
  point.kind = ThresholdChoice::Kind::kOperatingPoint;
  point.operating_point = "far_1e-3";
  const std::string red = FaceImage({{kRed, 10, 10}});
  auto bundle = service_->Verify({ImageSide(red), ImageSide(red), point}, {});
  ASSERT_TRUE(bundle.ok());
  EXPECT_EQ(bundle->threshold.source, "far_1e-3") << "an empty gallery falls back to the bundle";

  // 120 identities of two templates each: 120 genuine pairs, 28,560 impostor pairs (enough for 1e-3).
  options.gallery_calibration.refresh_seconds = 1;
  Start(Spec(), options);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> channel(0, 255);
  for (int i = 0; i < 120; ++i) {
    const cv::Scalar colour(channel(rng), channel(rng), channel(rng));
    const std::string png = FaceImage({{colour, 10, 10}});
    EnrollQuery q;
    q.identity_id = "p" + std::to_string(i);
    q.images = {png, png};
    ASSERT_TRUE(service_->Enroll(q, {}).ok());
  }
  GalleryReportQuery query;
  query.target_fars = {1e-3};
  const auto report = service_->Report(query);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->report.genuine_pairs, 120);
  EXPECT_EQ(report->report.impostor_pairs, 240 * 239 / 2 - 120);
  ASSERT_EQ(report->report.thresholds.size(), 3U);  // in force, best_accuracy, far_1e-3
  EXPECT_EQ(report->report.thresholds[0].name, "in force");
  EXPECT_EQ(report->in_force_source, "best_accuracy");
  ASSERT_EQ(report->report.far_targets.size(), 1U);
  const FarTargetRates& target = report->report.far_targets[0];
  EXPECT_TRUE(target.reliable);
  EXPECT_LE(target.far.rate, 1e-3);
  EXPECT_GT(target.threshold, 0.95) << "positive-octant impostors need a stricter threshold than the bundle's";

  const auto calibrated = service_->Verify({ImageSide(red), ImageSide(red), point}, {});
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->threshold.source, "gallery:default:far_1e-3");
  EXPECT_DOUBLE_EQ(calibrated->threshold.value, target.threshold);
  // Other operating points keep the bundle's thresholds.
  EXPECT_EQ(service_->Verify({ImageSide(red), ImageSide(red), {}}, {})->threshold.source, "best_accuracy");

  query.target_fars = {0};
  EXPECT_THAT(service_->Report(query).status().message(), HasSubstr("target_fars[0] is 0"));
  query.target_fars = {};
  query.histogram_bins = 5000;
  EXPECT_THAT(service_->Report(query).status().message(), HasSubstr("histogram_bins is 5000"));
  query.histogram_bins = 0;
  query.gallery = "nope";
  EXPECT_EQ(service_->Report(query).status().code(), absl::StatusCode::kNotFound);
}

TEST(FaceServiceCreateTest, RefusesAGalleryOfAnotherModel) {
  TempDir dir;
  auto store = SqliteGalleryStore::Open(dir.File("g.db"));
  ASSERT_TRUE(store.ok());
  auto gallery = Gallery::Open(*std::move(store), "other-model", kFakeDim);
  ASSERT_TRUE(gallery.ok());
  const auto s = FaceService::Create({}, std::make_unique<FakeEngine>(Spec()), *std::move(gallery), nullptr).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("other-model"));
}

}  // namespace
}  // namespace veriface::testing
