// "The storage backend cannot be reached": an IOError the wire reports as UNAVAILABLE.
//
// The S3 engine tags every failure of the object store service (unreachable endpoint,
// throttling, refused credentials, a missing bucket) with this detail, so that clients
// see a retryable UNAVAILABLE with the reason, not an INTERNAL error. Nothing
// acknowledged is lost: a write that fails this way was not acknowledged.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <arrow/status.h>

namespace foc {

/// The detail attached to the IOError of an unavailable storage backend.
class StorageUnavailableDetail final : public arrow::StatusDetail {
 public:
  static constexpr char kTypeId[] = "foc::StorageUnavailableDetail";
  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override { return "storage unavailable"; }
};

/// An IOError carrying a StorageUnavailableDetail.
template <typename... Args>
arrow::Status StorageUnavailableError(Args&&... args) {
  return arrow::Status::IOError(std::forward<Args>(args)...)
      .WithDetail(std::make_shared<StorageUnavailableDetail>());
}

/// True when `st` says the storage backend is unavailable.
inline bool IsStorageUnavailable(const arrow::Status& st) {
  return !st.ok() && st.detail() &&
         std::string(st.detail()->type_id()) == StorageUnavailableDetail::kTypeId;
}

}  // namespace foc
