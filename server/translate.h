#pragma once
// Translation between veriface.v1's messages and the serving core's plain types (core/serving/requests.h),
// and between absl::Status and grpc::Status. Nothing here decides anything about faces or galleries: a
// proto value the core has no word for (an unknown enum number) is the only thing refused here.

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/serving/call_budget.h"
#include "core/serving/requests.h"
#include "proto/veriface/v1/veriface.pb.h"

namespace veriface::server {

grpc::Status ToGrpc(const absl::Status& status);

// The call's deadline (on the steady clock) and a way to see that its caller has gone.
CallBudget BudgetOf(grpc::ServerContext* context);

// Requests. The views borrow the request's image bytes: the request must outlive the query.
EmbedQuery FromProto(const v1::EmbedRequest& request);
absl::StatusOr<VerifyQuery> FromProto(const v1::VerifyRequest& request);
absl::StatusOr<IdentifyQuery> FromProto(const v1::IdentifyRequest& request);
absl::StatusOr<EnrollQuery> FromProto(const v1::EnrollRequest& request);
DeleteQuery FromProto(const v1::DeleteIdentityRequest& request);
IdentityRef FromProto(const v1::GetIdentityRequest& request);
GalleryReportQuery FromProto(const v1::GalleryReportRequest& request);

// Answers.
void ToProto(const EmbedAnswer& answer, v1::EmbedResponse* out);
void ToProto(const VerifyAnswer& answer, v1::VerifyResponse* out);
void ToProto(const IdentifyAnswer& answer, v1::IdentifyResponse* out);
void ToProto(const EnrollAnswer& answer, v1::EnrollResponse* out);
void ToProto(const DeleteAnswer& answer, v1::DeleteIdentityResponse* out);
void ToProto(const IdentityInfo& info, v1::Identity* out);
void ToProto(const ListAnswer& answer, v1::ListIdentitiesResponse* out);
void ToProto(const GallerySummary& summary, v1::GalleryInfo* out);
void ToProto(const std::vector<GallerySummary>& galleries, v1::ListGalleriesResponse* out);
void ToProto(const GalleryReportAnswer& answer, v1::GalleryReport* out);
// server_version is the server's, not the core's: the caller sets it.
absl::Status ToProto(const ServiceInfo& info, v1::ModelInfo* out);

}  // namespace veriface::server
