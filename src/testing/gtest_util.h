// GoogleTest helpers for arrow::Status / arrow::Result (test code only). All of them
// accept a streamed message: `EXPECT_OK(Parse(k)) << k;`.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include <arrow/result.h>
#include <arrow/status.h>

namespace foc::testing {

inline const ::arrow::Status& ToStatus(const ::arrow::Status& st) { return st; }
template <typename T>
const ::arrow::Status& ToStatus(const ::arrow::Result<T>& r) {
  return r.status();
}

template <typename T>
::testing::AssertionResult IsOk(const char* expr, const T& value) {
  const ::arrow::Status& st = ToStatus(value);
  if (st.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " failed: " << st.ToString();
}

template <typename T>
::testing::AssertionResult HasStatus(const char*, const char*, const char* expr,
                                     ::arrow::StatusCode code, const std::string& text,
                                     const T& value) {
  const ::arrow::Status& st = ToStatus(value);
  if (st.code() == code && st.message().find(text) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << expr << " gave " << st.ToString() << "; expected code "
         << ::arrow::Status::CodeAsString(code) << " with a message containing '" << text
         << "'";
}

}  // namespace foc::testing

#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::foc::testing::IsOk, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::foc::testing::IsOk, expr)

/// Expects `expr` to fail with arrow::StatusCode::`code` and a message containing `text`.
#define EXPECT_STATUS(code, text, expr) \
  EXPECT_PRED_FORMAT3(::foc::testing::HasStatus, ::arrow::StatusCode::code, text, expr)

#define FOC_CONCAT_INNER(a, b) a##b
#define FOC_CONCAT(a, b) FOC_CONCAT_INNER(a, b)
#define FOC_ASSIGN_OR_FAIL_IMPL(tmp, lhs, expr)                      \
  auto tmp = (expr);                                                 \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status().ToString(); \
  lhs = std::move(tmp).ValueUnsafe()

/// `ASSERT_OK_AND_ASSIGN(auto x, MakeX());` unwraps a Result or fails the test.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  FOC_ASSIGN_OR_FAIL_IMPL(FOC_CONCAT(_foc_result_, __LINE__), lhs, expr)
