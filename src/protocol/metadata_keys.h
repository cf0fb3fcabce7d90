// The `flame.cache.*` schema metadata of the wire, for the server, the C++ client and the
// CLI. A leaf header (it includes nothing of ours), so that object/ (which keeps native
// tables with these keys) can use it although protocol/ otherwise sits above object/.
// Installed with the C++ client (detail/protocol/). docs/protocol.md describes each key.
#pragma once

namespace foc {

/// Every key of ours starts with this; clients strip them before handing a table to
/// users.
inline constexpr char kFlameMetadataPrefix[] = "flame.cache.";
/// Schema metadata key/value that mark a native Arrow table upload (flamepy 0.6.0).
inline constexpr char kFormatMetadataKey[] = "flame.cache.format";
inline constexpr char kNativeTableFormat[] = "arrow-table-v1";
/// Schema metadata key carrying a native table's base version (decimal string).
inline constexpr char kVersionMetadataKey[] = "flame.cache.version";
/// Schema metadata key carrying the server instance identifier (see Store::epoch()).
inline constexpr char kEpochMetadataKey[] = "flame.cache.epoch";
/// What flamepy 0.6.0 records about a native table's Python type ("pyarrow.table").
inline constexpr char kLogicalTypeMetadataKey[] = "flame.cache.logical_type";

}  // namespace foc
