#pragma once
// The digest a write receipt keeps instead of the request's gallery and identity: the gallery compares it
// to refuse a request id reused for another request, and the stores use it to drop an identity's enrolment
// receipts (which list its template ids) when the identity is deleted.

#include <string>

#include "core/gallery/gallery_types.h"

namespace veriface {

std::string ReceiptFingerprint(WriteReceipt::Kind kind, const std::string& gallery, const std::string& identity_id);

}  // namespace veriface
