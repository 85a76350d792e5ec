#include "core/gallery/receipt_fingerprint.h"

#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"

namespace veriface {

std::string ReceiptFingerprint(WriteReceipt::Kind kind, const std::string& gallery, const std::string& identity_id) {
  // Length-prefixed fields, so that no two different requests give the same text.
  return Sha256Hex(absl::StrCat("veriface-receipt-1:", kind == WriteReceipt::Kind::kEnroll ? "Enroll" : "Delete", ":",
                                gallery.size(), ":", gallery, ":", identity_id.size(), ":", identity_id));
}

}  // namespace veriface
