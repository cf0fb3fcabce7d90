// The S3 storage engine: objects in an S3-compatible bucket, through Arrow's own
// arrow::fs::S3FileSystem (docs/storage.md, "S3 storage").
#pragma once

#include <cstdint>
#include <memory>
#include <string>

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

/// The URI without user info (credentials), for logs and errors.
std::string RedactS3Uri(const std::string& uri);

}  // namespace foc
