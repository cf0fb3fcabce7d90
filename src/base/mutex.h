// foc::Mutex, foc::MutexLock and foc::CondVar: std::mutex and std::condition_variable
// with the capability attributes clang's thread-safety analysis needs (libstdc++'s own
// types carry none). Use these, not std::mutex, for any mutex that guards members, and
// mark the members FOC_GUARDED_BY(mu_).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "base/thread_annotations.h"

namespace foc {

/// A non-recursive mutex that clang's -Wthread-safety can reason about.
class FOC_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() FOC_ACQUIRE() { mu_.lock(); }
  void Unlock() FOC_RELEASE() { mu_.unlock(); }
  bool TryLock() FOC_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  /// Tells the analysis the caller holds this mutex (for callbacks it cannot follow).
  void AssertHeld() const FOC_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

/// Holds a Mutex for its own lifetime (std::lock_guard with annotations).
class FOC_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) FOC_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() FOC_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

/// A reader/writer mutex (std::shared_mutex) that clang's -Wthread-safety can reason
/// about: members it guards are FOC_GUARDED_BY(mu_) and may be read under a
/// ReaderMutexLock, written only under a WriterMutexLock.
class FOC_CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() FOC_ACQUIRE() { mu_.lock(); }
  void Unlock() FOC_RELEASE() { mu_.unlock(); }
  void LockShared() FOC_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() FOC_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

/// Holds a SharedMutex exclusively for its own lifetime.
class FOC_SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex* mu) FOC_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterMutexLock() FOC_RELEASE() { mu_->Unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
};

/// Holds a SharedMutex shared for its own lifetime.
class FOC_SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex* mu) FOC_ACQUIRE_SHARED(mu) : mu_(mu) {
    mu_->LockShared();
  }
  ~ReaderMutexLock() FOC_RELEASE() { mu_->UnlockShared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
};

/// A condition variable bound to one Mutex; Wait* must be called with that mutex held.
/// Wait* carry no FOC_REQUIRES: the analysis cannot tell that the bound mutex is the one
/// a caller holds under its own name (`gc_mu_` vs the CondVar's `mu_`), as LevelDB's
/// port::CondVar; the caller's own annotations (FOC_GUARDED_BY on what it reads around
/// the wait, MutexLock) are what the analysis checks.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait() {
    mu_->AssertHeld();
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  /// Returns false on timeout.
  template <class Rep, class Period>
  bool WaitFor(std::chrono::duration<Rep, Period> d) {
    mu_->AssertHeld();
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    const bool woken = cv_.wait_for(lock, d) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  /// Returns false once `deadline` has passed. For a predicate with a deadline:
  /// `while (!ready && cv.WaitUntil(deadline)) {}`.
  template <class Clock, class Duration>
  bool WaitUntil(std::chrono::time_point<Clock, Duration> deadline) {
    mu_->AssertHeld();
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  Mutex* const mu_;
  std::condition_variable cv_;
};

}  // namespace foc
