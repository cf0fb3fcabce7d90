// The S3 storage engine: objects in an S3-compatible bucket, through Arrow's own
// arrow::fs::S3FileSystem (docs/storage.md, "S3 storage").
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <arrow/filesystem/s3fs.h>
#include <arrow/result.h>

#include "storage/storage_engine.h"

namespace foc {

struct S3StorageOptions {
  /// `s3://[access:secret@]<bucket>[/<prefix>][?<Arrow S3 options>&lease_seconds=<n>]`:
  /// the URI forms of arrow::fs::S3Options::FromUri (endpoint_override, scheme, region,
  /// ...) plus `lease_seconds` (ours, default 10): how long the prefix lease of a server
  /// that stopped renewing it blocks another server.
  std::string uri;
  int64_t capacity_bytes = 0;  ///< 0 = unlimited
};

/// Connects, checks the bucket, takes the prefix lease (refused while another live server
/// holds it) and loads the instance id. Errors name the URI and S3's reason.
arrow::Result<std::unique_ptr<StorageEngine>> OpenS3Storage(S3StorageOptions options);

/// A connected S3 filesystem and the `<bucket>/<prefix>` path an `s3://` URI names.
struct S3Location {
  std::shared_ptr<arrow::fs::S3FileSystem> fs;
  std::string root;            ///< `<bucket>[/<prefix>]`, no trailing slash
  std::string shown;           ///< the URI without credentials
  int64_t lease_seconds = 10;  ///< the URI's `lease_seconds`
};

/// Parses `uri` (as S3StorageOptions::uri) and connects with the project's S3 settings
/// (few quick retries, short connect timeout, one PutObject below the part size), so an
/// outage surfaces as UNAVAILABLE within seconds. Used by the S3 engine and by cluster
/// mode's payload store.
arrow::Result<S3Location> ConnectS3(const std::string& uri);

/// True when `st` is an S3 failure (the service unreachable, throttling, ...) that
/// should reach clients as UNAVAILABLE; wraps an S3 IOError so (storage_unavailable.h).
arrow::Status S3Unavailable(const arrow::Status& st, std::string_view what);

/// The URI without user info (credentials), for logs and errors.
std::string RedactS3Uri(const std::string& uri);

}  // namespace foc
