// Clang thread-safety analysis attributes
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), in the manner of LevelDB's
// port/thread_annotations.h. Under GCC they expand to nothing; the `tsa` preset builds
// with clang and -Wthread-safety -Werror, so a member marked FOC_GUARDED_BY(mu_) that is
// touched without holding mu_ fails the build.
#pragma once

#if defined(__clang__)
#define FOC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FOC_THREAD_ANNOTATION(x)
#endif

#define FOC_CAPABILITY(name) FOC_THREAD_ANNOTATION(capability(name))
#define FOC_SCOPED_CAPABILITY FOC_THREAD_ANNOTATION(scoped_lockable)
#define FOC_GUARDED_BY(x) FOC_THREAD_ANNOTATION(guarded_by(x))
#define FOC_PT_GUARDED_BY(x) FOC_THREAD_ANNOTATION(pt_guarded_by(x))
#define FOC_ACQUIRED_AFTER(...) FOC_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define FOC_ACQUIRED_BEFORE(...) FOC_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define FOC_REQUIRES(...) FOC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FOC_REQUIRES_SHARED(...) \
  FOC_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define FOC_ACQUIRE(...) FOC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FOC_ACQUIRE_SHARED(...) \
  FOC_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define FOC_RELEASE(...) FOC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FOC_RELEASE_SHARED(...) \
  FOC_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define FOC_TRY_ACQUIRE(...) FOC_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define FOC_EXCLUDES(...) FOC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define FOC_ASSERT_CAPABILITY(x) FOC_THREAD_ANNOTATION(assert_capability(x))
#define FOC_RETURN_CAPABILITY(x) FOC_THREAD_ANNOTATION(lock_returned(x))
#define FOC_NO_THREAD_SAFETY_ANALYSIS FOC_THREAD_ANNOTATION(no_thread_safety_analysis)
