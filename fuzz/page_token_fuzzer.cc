// List's page tokens: whatever token a caller sends gets a page or INVALID_ARGUMENT, never a crash, and a
// page never holds more than asked, is in id order, starts after the token's position and hands out a
// token that List accepts. The first input byte is the page size; the rest is the token.

#include <cstdint>
#include <memory>
#include <string>

#include "core/gallery/collection.h"
#include "fuzz/fuzz_check.h"

namespace {

constexpr int64_t kDim = 4;

// A small collection whose ids include awkward bytes, built once: List does not change it.
std::unique_ptr<veriface::Collection> MakeCollection() {
  auto collection = std::make_unique<veriface::Collection>(veriface::GalleryRecord{"fuzz", 0, 0}, "fuzz-model", kDim,
                                                           veriface::GalleryLimits{});
  const std::string ids[] = {"a", "alice", "b", "bob", "carol", std::string("nul\0id", 6), "\xff\xfe", "zz"};
  int n = 0;
  for (const std::string& id : ids) {
    veriface::IdentityState state;
    state.record.identity_id = id;
    veriface::TemplateRecord t;
    t.template_id = "t" + std::to_string(n);
    t.identity_id = id;
    t.model_id = "fuzz-model";
    t.embedding.assign(kDim, 0.0F);
    t.embedding[n % kDim] = 1.0F;
    state.templates.push_back(t);
    if (!collection->Put(std::move(state)).ok()) std::abort();
    ++n;
  }
  return collection;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<veriface::Collection> collection = MakeCollection();
  if (size == 0) return 0;
  const int page_size = static_cast<int8_t>(data[0]);  // negatives mean the default, as 0 does
  const std::string token(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto page = collection->List(page_size, token);
  if (!page.ok()) {
    FUZZ_CHECK(page.status().code() == absl::StatusCode::kInvalidArgument, "a bad token is not INVALID_ARGUMENT");
    return 0;
  }
  FUZZ_CHECK(page_size <= 0 || static_cast<int>(page->identities.size()) <= page_size, "a page is over its size");
  for (size_t i = 1; i < page->identities.size(); ++i) {
    FUZZ_CHECK(page->identities[i - 1].record.identity_id < page->identities[i].record.identity_id,
               "a page is out of id order");
  }
  if (!page->next_page_token.empty()) {
    const auto next = collection->List(page_size, page->next_page_token);
    FUZZ_CHECK(next.ok(), "List refused its own next_page_token");
    FUZZ_CHECK(next->identities.empty() ||
                   next->identities.front().record.identity_id > page->identities.back().record.identity_id,
               "the next page does not start after this one");
  }
  return 0;
}
