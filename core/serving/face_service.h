#pragma once
// The service itself, on plain C++ types: Embed, Verify, Identify, Enroll, Delete, Get, List and Info
// over a FaceEngine (detect and embed) and a Gallery. It checks each request against its limits, decodes
// the images, chooses one face per image, resolves thresholds and reads or writes the gallery. Every
// failure is a status whose message names the request field it is about (as veriface.proto spells it),
// so the server only translates it.
//
// Thread-safe: any number of calls at once (the engine batches their faces together).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/gallery/gallery.h"
#include "core/gallery/gallery_follower.h"
#include "core/gallery/gallery_report.h"
#include "core/serving/call_budget.h"
#include "core/serving/call_slots.h"
#include "core/serving/face_engine.h"
#include "core/serving/pixel_budget.h"
#include "core/serving/requests.h"
#include "core/serving/service_observer.h"
#include "core/serving/service_options.h"

namespace veriface {

class FaceService {
 public:
  // The gallery must hold templates of the engine's model (Gallery::Open checks the store). `observer`
  // may be null.
  static absl::StatusOr<std::unique_ptr<FaceService>> Create(FaceServiceOptions options,
                                                             std::unique_ptr<FaceEngine> engine,
                                                             std::unique_ptr<Gallery> gallery,
                                                             std::shared_ptr<ServiceObserver> observer);
  ~FaceService();
  FaceService(const FaceService&) = delete;
  FaceService& operator=(const FaceService&) = delete;

  absl::StatusOr<EmbedAnswer> Embed(const EmbedQuery& query, const CallBudget& budget);
  absl::StatusOr<VerifyAnswer> Verify(const VerifyQuery& query, const CallBudget& budget);
  absl::StatusOr<IdentifyAnswer> Identify(const IdentifyQuery& query, const CallBudget& budget);
  // Committed to the gallery once every image is embedded; all or nothing. Once the faces are embedded it
  // completes even if the caller has gone, so that a retry finds the enrolment.
  absl::StatusOr<EnrollAnswer> Enroll(const EnrollQuery& query, const CallBudget& budget);
  absl::StatusOr<DeleteAnswer> Delete(const DeleteQuery& query);
  absl::StatusOr<IdentityInfo> Get(const IdentityRef& identity) const;
  // page_size 0: 100.
  absl::StatusOr<ListAnswer> List(const std::string& gallery, int page_size, const std::string& page_token) const;
  ServiceInfo Info() const;
  // The gallery's genuine and impostor score distributions and how the thresholds do on them.
  absl::StatusOr<GalleryReportAnswer> Report(const GalleryReportQuery& query) const;

  // Named galleries; see Gallery.
  absl::StatusOr<GallerySummary> CreateGallery(const std::string& name, int64_t max_templates);
  std::vector<GallerySummary> ListGalleries() const;
  absl::StatusOr<GallerySummary> DeleteGallery(const std::string& name);

  // Finishes the engine's queued work; later calls that need it get UNAVAILABLE.
  void Shutdown();

  const ModelSpec& spec() const { return engine_->spec(); }
  const Threshold& default_threshold() const { return default_threshold_; }
  const Gallery& gallery() const { return *gallery_; }

 private:
  struct FaceJob;
  struct FaceResult;
  struct GalleryThresholdCache;
  class FollowRelay;

  FaceService(FaceServiceOptions options, std::unique_ptr<FaceEngine> engine, std::unique_ptr<Gallery> gallery,
              std::shared_ptr<ServiceObserver> observer, Threshold default_threshold);

  absl::StatusOr<Threshold> Resolve(const ThresholdChoice& choice) const;
  // The gallery-calibrated threshold of options_.gallery_calibration, recomputed when older than its refresh
  // interval; none when the gallery's pairs are too few for a reliable estimate.
  std::optional<Threshold> GalleryThreshold() const;
  // FAILED_PRECONDITION naming the reasons when the face is below the quality the job requires.
  absl::Status CheckQuality(const FaceJob& job, const FaceQuality& quality) const;
  absl::StatusOr<DetectorOptions> DetectionFor(int min_face_size, const std::string& field) const;
  absl::StatusOr<cv::Mat> Decode(std::string_view bytes, const std::string& field) const;
  // Holds the decoded pixels of `images` (read from their headers) in the in-flight budget; an image
  // whose header is bad or over the size limits counts nothing here, as Decode refuses it.
  // A call slot, then room in the engine's queues: RESOURCE_EXHAUSTED at once when either is full.
  absl::StatusOr<CallSlots::Slot> AdmitModelWork();
  absl::StatusOr<PixelBudget::Reservation> ReservePixels(const std::vector<std::string_view>& images,
                                                         const std::string& what);
  // Decodes each job's image, detects (all images in one submission, so that they share batches), chooses
  // one face per image and embeds the chosen faces together.
  absl::StatusOr<std::vector<FaceResult>> EmbedOneFaceEach(const std::vector<FaceJob>& jobs, const CallBudget& budget);
  void PublishGallerySize() const;
  // The gallery named by a request's field `field` ("" for the default).
  absl::StatusOr<std::shared_ptr<const Collection>> FindGallery(const std::string& name,
                                                                const std::string& field) const;

  const FaceServiceOptions options_;
  const std::unique_ptr<FaceEngine> engine_;
  const std::unique_ptr<Gallery> gallery_;
  const std::shared_ptr<ServiceObserver> observer_;
  const Threshold default_threshold_;
  const std::unique_ptr<GalleryThresholdCache> gallery_threshold_;
  const std::unique_ptr<PixelBudget> pixel_budget_;
  CallSlots call_slots_;  // taken by every call with an image to search, before anything else is held
  // Only for a store that other replicas share; declared after gallery_, so it stops before the gallery goes.
  std::unique_ptr<GalleryFollower> follower_;
};

}  // namespace veriface
