#pragma once
// The server's version, from the project version in CMakeLists.txt.

#ifndef VERIFACE_VERSION
#define VERIFACE_VERSION "0.0.0-dev"
#endif

namespace veriface::server {

inline constexpr const char* kVersion = VERIFACE_VERSION;

}  // namespace veriface::server
