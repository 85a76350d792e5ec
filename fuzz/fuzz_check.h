#pragma once
// FUZZ_CHECK(condition, message): what a fuzz target asserts about the code under test beyond "does not
// crash". A broken promise aborts, so that libFuzzer (or the replay driver) keeps the input as a crash.

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, message)                                                                     \
  do {                                                                                                     \
    if (!(condition)) {                                                                                    \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, __LINE__, #condition, message); \
      std::abort();                                                                                        \
    }                                                                                                      \
  } while (false)
