# VERIFACE_SANITIZE: build everything with AddressSanitizer + UndefinedBehaviorSanitizer ("address") or
# ThreadSanitizer ("thread"), for the suites named in CMakePresets.json. The LibTorch, gRPC and OpenCV
# libraries themselves are not instrumented: ASan still sees their heap through the interposed malloc,
# and TSan sees only the synchronisation this project's code does. The asan test preset turns leak
# detection off: gRPC's and LibTorch's process-wide singletons are never freed, by design, and would be
# reported at every exit; a leak of ours shows instead as growth in bench/server/memory_burst.sh.
# The tsan test preset runs with OMP_NUM_THREADS=1: libgomp is not built with TSan, so the barriers
# between faiss's OpenMP regions are invisible to it and it reports races between pool threads that
# those barriers order. With one OpenMP thread, concurrency left is veriface's own threads, which TSan
# sees in full. Its one suppression, with its reason, is cmake/tsan.supp.
# The gRPC server suites are in the asan presets but not the tsan ones: gRPC, abseil and protobuf hand each
# call between their own threads with atomics and futexes that Debian's uninstrumented builds hide from
# TSan, so a sanitized veriface-server reports 1,242 races there (none with its racing access in
# veriface's code; bench/results/hardening/tsan_server_suites.txt). Suppressing whole libraries would also
# hide a real race of ours on a request; the serving core they call is under TSan in-process instead.
set(VERIFACE_SANITIZE "" CACHE STRING "Sanitizer build: empty, address (ASan+UBSan) or thread (TSan)")
set_property(CACHE VERIFACE_SANITIZE PROPERTY STRINGS "" address thread)
if(VERIFACE_SANITIZE STREQUAL "address")
  set(sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
elseif(VERIFACE_SANITIZE STREQUAL "thread")
  set(sanitize_flags -fsanitize=thread -fno-omit-frame-pointer)
elseif(NOT VERIFACE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "VERIFACE_SANITIZE='${VERIFACE_SANITIZE}': use address, thread or nothing")
endif()
if(sanitize_flags)
  add_compile_options(${sanitize_flags})
  add_link_options(${sanitize_flags})
endif()

# VERIFACE_FUZZ: a libFuzzer build (clang only) of the targets in fuzz/. Everything is compiled with the
# fuzzer's coverage instrumentation so that it can steer by the code under test, not only by the harness;
# the fuzz preset adds ASan and UBSan through VERIFACE_SANITIZE.
option(VERIFACE_FUZZ "Build fuzz/ as libFuzzer binaries (needs clang)" OFF)
if(VERIFACE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "VERIFACE_FUZZ needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: use the fuzz preset")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
