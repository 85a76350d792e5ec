# All dependencies are Debian 12 packages; deploy/setup.sh installs them.
find_package(Threads REQUIRED)
find_package(Torch REQUIRED)
find_package(OpenCV 4 REQUIRED COMPONENTS core imgproc imgcodecs)
find_package(absl REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)  # reading npm tarballs in the importer
if(VERIFACE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(VERIFACE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# TorchConfig puts its flags on the imported target; keep them off everything else.
set(VERIFACE_TORCH_LIBS ${TORCH_LIBRARIES})
