// FOC_DCHECK: invariants written as code, checked in debug and sanitizer builds.
//
// FOC_DCHECK(condition) aborts with the file, line and condition text when the condition
// is false, in builds where FOC_DCHECK_IS_ON is 1: every build without NDEBUG (the
// `debug` and `asan` presets, the fuzz targets) or with FOC_FORCE_DCHECK defined.
// Elsewhere (the `release` preset) the condition is still compiled, so it cannot rot,
// but never evaluated: a DCHECK may be as costly as the invariant needs, and must have no
// side effect the program relies on.
//
// A DCHECK states what the code assumes can never happen; it is not error handling.
// Input from clients, files or the network that is wrong gets an arrow::Status, never a
// DCHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#if !defined(NDEBUG) || defined(FOC_FORCE_DCHECK)
#define FOC_DCHECK_IS_ON 1
#else
#define FOC_DCHECK_IS_ON 0
#endif

namespace foc::internal {

[[noreturn]] inline void DcheckFailed(const char* file, int line, const char* condition,
                                      const std::string& detail) {
  std::fprintf(stderr, "%s:%d: FOC_DCHECK failed: %s%s%s\n", file, line, condition,
               detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

template <typename A, typename B>
std::string DescribePair(const A& a, const B& b) {
  std::ostringstream out;
  out << a << " vs " << b;
  return out.str();
}

}  // namespace foc::internal

#if FOC_DCHECK_IS_ON
#define FOC_DCHECK(condition)                                                            \
  do {                                                                                   \
    if (!(condition)) ::foc::internal::DcheckFailed(__FILE__, __LINE__, #condition, ""); \
  } while (false)
/// FOC_DCHECK(a op b) that also prints both values.
#define FOC_DCHECK_OP(op, a, b)                                       \
  do {                                                                \
    const auto& foc_dcheck_a = (a);                                   \
    const auto& foc_dcheck_b = (b);                                   \
    if (!(foc_dcheck_a op foc_dcheck_b))                              \
      ::foc::internal::DcheckFailed(                                  \
          __FILE__, __LINE__, #a " " #op " " #b,                      \
          ::foc::internal::DescribePair(foc_dcheck_a, foc_dcheck_b)); \
  } while (false)
#else
#define FOC_DCHECK(condition) \
  do {                        \
    if (false) {              \
      (void)(condition);      \
    }                         \
  } while (false)
#define FOC_DCHECK_OP(op, a, b) \
  do {                          \
    if (false) {                \
      (void)((a)op(b));         \
    }                           \
  } while (false)
#endif

#define FOC_DCHECK_EQ(a, b) FOC_DCHECK_OP(==, a, b)
#define FOC_DCHECK_NE(a, b) FOC_DCHECK_OP(!=, a, b)
#define FOC_DCHECK_LE(a, b) FOC_DCHECK_OP(<=, a, b)
#define FOC_DCHECK_LT(a, b) FOC_DCHECK_OP(<, a, b)
#define FOC_DCHECK_GE(a, b) FOC_DCHECK_OP(>=, a, b)
#define FOC_DCHECK_GT(a, b) FOC_DCHECK_OP(>, a, b)
