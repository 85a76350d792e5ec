#include "trainer/bundle/npm_tarball.h"

#include <zlib.h>

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"

namespace veriface {
namespace {

constexpr size_t kBlock = 512;
// The npm packages this project pins unpack to tens of megabytes; a larger stream is not one of them
// (and a gzip bomb must not take the importer's memory).
constexpr size_t kMaxUnpacked = size_t{1} << 30;

absl::StatusOr<std::string> Gunzip(const std::string& packed, const std::string& where) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return absl::InternalError("zlib: inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (out.size() >= kMaxUnpacked) {
      inflateEnd(&z);
      return absl::InvalidArgumentError(absl::StrCat(where, ": unpacks to more than ", kMaxUnpacked, " bytes"));
    }
    const size_t before = out.size();
    out.resize(before + (size_t{1} << 20));
    z.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    z.avail_out = static_cast<uInt>(out.size() - before);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(out.size() - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // truncated: no more input to make progress with
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return absl::InvalidArgumentError(absl::StrCat(where, ": not a complete gzip stream"));
  return out;
}

// A NUL- or space-terminated octal field of a tar header.
bool ParseOctal(std::string_view field, uint64_t* value) {
  *value = 0;
  bool any = false;
  for (const char c : field) {
    if (c == '\0' || c == ' ') {
      if (any) break;
      continue;
    }
    if (c < '0' || c > '7' || *value > (uint64_t{1} << 60)) return false;
    *value = *value * 8 + static_cast<uint64_t>(c - '0');
    any = true;
  }
  return any;
}

std::string CString(std::string_view field) { return std::string(field.substr(0, field.find('\0'))); }

}  // namespace

absl::StatusOr<std::string> ReadPinnedTarballMember(const std::string& tarball, const std::string& sha256_hex,
                                                    const std::string& member) {
  VF_ASSIGN_OR_RETURN(const std::string packed, ReadFileToString(tarball));
  const std::string actual = Sha256Hex(packed);
  if (actual != absl::AsciiStrToLower(sha256_hex)) {
    return absl::FailedPreconditionError(
        absl::StrCat(tarball, " has sha256 ", actual, ", expected ", sha256_hex, ": it is not the pinned package"));
  }
  VF_ASSIGN_OR_RETURN(const std::string tar, Gunzip(packed, tarball));
  const std::string_view all(tar);
  for (size_t at = 0; at + kBlock <= all.size();) {
    const std::string_view header = all.substr(at, kBlock);
    if (header.find_first_not_of('\0') == std::string_view::npos) break;  // the end-of-archive blocks
    uint64_t size = 0;
    if (!ParseOctal(header.substr(124, 12), &size)) {
      return absl::InvalidArgumentError(absl::StrCat(tarball, ": a tar header at byte ", at, " has no size"));
    }
    std::string name = CString(header.substr(0, 100));
    if (header.substr(257, 5) == "ustar") {
      const std::string prefix = CString(header.substr(345, 155));
      if (!prefix.empty()) name = absl::StrCat(prefix, "/", name);
    }
    const size_t data = at + kBlock;
    if (size > all.size() - data) {
      return absl::InvalidArgumentError(absl::StrCat(tarball, ": '", name, "' runs past the end of the archive"));
    }
    const char type = header[156];
    if (name == member && (type == '0' || type == '\0')) return std::string(all.substr(data, size));
    at = data + (size + kBlock - 1) / kBlock * kBlock;
  }
  return absl::NotFoundError(absl::StrCat(tarball, " has no file '", member, "'"));
}

}  // namespace veriface
