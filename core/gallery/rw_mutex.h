#pragma once
// A reader-writer mutex that lets a waiting writer in ahead of new readers.
//
// std::shared_mutex on glibc prefers readers: while Identify calls overlap (a 1M-template Identify
// holds the read lock for tens of milliseconds, and a busy server always has one running), an Enroll
// or Delete waiting for the write lock could wait forever. Here a waiting writer blocks new readers,
// so it waits at most for the reads already running. Not recursive: a thread holding the read lock
// must not take it again.

#include <pthread.h>

namespace veriface {

class WriterPreferringMutex {
 public:
  WriterPreferringMutex();
  ~WriterPreferringMutex();
  WriterPreferringMutex(const WriterPreferringMutex&) = delete;
  WriterPreferringMutex& operator=(const WriterPreferringMutex&) = delete;

  // The Lockable and SharedLockable members used by std::unique_lock and std::shared_lock.
  void lock();
  void unlock();
  void lock_shared();
  void unlock_shared();

 private:
  pthread_rwlock_t rwlock_;
};

}  // namespace veriface
