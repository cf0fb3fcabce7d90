// Telling the two kinds of "storage full" apart.
//
// Both are arrow::Status::CapacityError (RESOURCE_EXHAUSTED on the wire); a StatusDetail
// says which one it is, because the store reacts differently:
//   * kLimit  — the write would exceed the configured capacity (`cache.capacity`): the
//   store
//               may evict least-recently-used objects from disk and retry;
//   * kDevice — the file system itself is full (ENOSPC/EDQUOT): nothing to evict that
//   would
//               help reliably, the write fails and the old object stays intact.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <arrow/status.h>

namespace foc {

enum class StorageFullKind { kLimit, kDevice };

/// The detail attached to the CapacityError of a full store.
class StorageFullDetail final : public arrow::StatusDetail {
 public:
  explicit StorageFullDetail(StorageFullKind kind, int64_t bytes_to_free = 0)
      : kind_(kind), bytes_to_free_(bytes_to_free) {}
  static constexpr char kTypeId[] = "foc::StorageFullDetail";
  const char* type_id() const override { return kTypeId; }
  std::string ToString() const override {
    return kind_ == StorageFullKind::kLimit ? "storage capacity limit" : "device full";
  }
  StorageFullKind kind() const { return kind_; }
  /// kLimit: how many stored bytes (as the engine counts them) must be freed before the
  /// refused write fits; 0 when unknown.
  int64_t bytes_to_free() const { return bytes_to_free_; }

 private:
  StorageFullKind kind_;
  int64_t bytes_to_free_;
};

/// A CapacityError carrying a StorageFullDetail of `kind`.
template <typename... Args>
arrow::Status StorageFullError(StorageFullKind kind, Args&&... args) {
  return arrow::Status::CapacityError(std::forward<Args>(args)...)
      .WithDetail(std::make_shared<StorageFullDetail>(kind));
}

/// The CapacityError of a write refused by the capacity limit (`cache.capacity`), saying
/// how many stored bytes must be freed for it to fit: the store evicts that much from
/// its durable tier and retries (it needs no estimate of the engine's file overhead).
template <typename... Args>
arrow::Status StorageLimitError(int64_t bytes_to_free, Args&&... args) {
  return arrow::Status::CapacityError(std::forward<Args>(args)...)
      .WithDetail(
          std::make_shared<StorageFullDetail>(StorageFullKind::kLimit, bytes_to_free));
}

/// For a CapacityLimit error: the bytes to free (0 when unknown or another error).
inline int64_t BytesToFree(const arrow::Status& st) {
  if (!st.IsCapacityError() || !st.detail()) return 0;
  if (std::string(st.detail()->type_id()) != StorageFullDetail::kTypeId) return 0;
  return static_cast<const StorageFullDetail&>(*st.detail()).bytes_to_free();
}

/// True when `st` is a CapacityError because the configured capacity would be exceeded
/// (the caller may free space by evicting and retry).
inline bool IsCapacityLimit(const arrow::Status& st) {
  if (!st.IsCapacityError() || !st.detail()) return false;
  if (std::string(st.detail()->type_id()) != StorageFullDetail::kTypeId) return false;
  return static_cast<const StorageFullDetail&>(*st.detail()).kind() ==
         StorageFullKind::kLimit;
}

/// True when `st` says the device is full (ENOSPC/EDQUOT).
inline bool IsDeviceFull(const arrow::Status& st) {
  if (!st.IsCapacityError() || !st.detail()) return false;
  if (std::string(st.detail()->type_id()) != StorageFullDetail::kTypeId) return false;
  return static_cast<const StorageFullDetail&>(*st.detail()).kind() ==
         StorageFullKind::kDevice;
}

}  // namespace foc
