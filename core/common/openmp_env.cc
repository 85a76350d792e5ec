#include "core/common/openmp_env.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace veriface {

void UseShortOpenMpSpins(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0) != 0) return;
  if (setenv("GOMP_SPINCOUNT", "30000", /*overwrite=*/0) != 0) return;
  // /proc/self/exe names this very binary even when argv[0] is a bare name found through PATH.
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "warning: could not restart with short OpenMP spins (%s); using libgomp's defaults\n",
               std::strerror(errno));
}

}  // namespace veriface
