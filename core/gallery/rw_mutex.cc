#include "core/gallery/rw_mutex.h"

#include <cerrno>
#include <cstdlib>

namespace veriface {
namespace {

// A failure here means the lock itself is broken (e.g. unlocked by a thread that does not hold it):
// there is no state left to report an error from.
void Check(int rc) {
  if (rc != 0) std::abort();
}

}  // namespace

WriterPreferringMutex::WriterPreferringMutex() {
  pthread_rwlockattr_t attr;
  Check(pthread_rwlockattr_init(&attr));
#if defined(__GLIBC__)
  Check(pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP));
#endif
  Check(pthread_rwlock_init(&rwlock_, &attr));
  pthread_rwlockattr_destroy(&attr);
}

WriterPreferringMutex::~WriterPreferringMutex() { pthread_rwlock_destroy(&rwlock_); }

void WriterPreferringMutex::lock() { Check(pthread_rwlock_wrlock(&rwlock_)); }
void WriterPreferringMutex::unlock() { Check(pthread_rwlock_unlock(&rwlock_)); }

void WriterPreferringMutex::lock_shared() {
  int rc;
  // EAGAIN: the maximum number of concurrent readers was reached; it frees up as readers leave.
  while ((rc = pthread_rwlock_rdlock(&rwlock_)) == EAGAIN) {
  }
  Check(rc);
}

void WriterPreferringMutex::unlock_shared() { Check(pthread_rwlock_unlock(&rwlock_)); }

}  // namespace veriface
