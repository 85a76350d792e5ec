#pragma once
// The service fuzzer's input: a sequence of calls, each one byte naming the RPC, two bytes (little-endian)
// giving the length of the serialized request, and the request. A sequence lets the fuzzer reach states
// one call cannot (enrol, then identify or delete). The seed writer and the target share this file.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace veriface::fuzz {

enum class Call : uint8_t {
  kEmbed,
  kVerify,
  kIdentify,
  kEnroll,
  kDeleteIdentity,
  kGetIdentity,
  kListIdentities,
  kCreateGallery,
  kDeleteGallery,
  kGalleryReport,
  kCount,  // not a call: how many there are
};

struct Frame {
  Call call;
  std::string_view request;  // serialized; borrows the input
};

// Frames until the input runs out; a frame cut short ends the sequence. The kind byte is taken modulo
// the number of calls, so that every byte names one.
inline std::vector<Frame> ReadFrames(std::string_view input) {
  std::vector<Frame> frames;
  while (input.size() >= 3) {
    const auto kind = static_cast<uint8_t>(input[0]);
    const size_t length = static_cast<uint8_t>(input[1]) | (static_cast<size_t>(static_cast<uint8_t>(input[2])) << 8);
    input.remove_prefix(3);
    if (length > input.size()) break;
    frames.push_back({static_cast<Call>(kind % static_cast<uint8_t>(Call::kCount)), input.substr(0, length)});
    input.remove_prefix(length);
  }
  return frames;
}

inline void AppendFrame(Call call, const std::string& request, std::string* out) {
  out->push_back(static_cast<char>(call));
  out->push_back(static_cast<char>(request.size() & 0xff));
  out->push_back(static_cast<char>((request.size() >> 8) & 0xff));
  out->append(request);
}

}  // namespace veriface::fuzz
