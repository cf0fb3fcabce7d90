// The Arrow Flight front end of flame-object-cache: decodes each request, calls the
// object store, encodes the reply. The protocol is upstream flame-object-cache 0.6.0's
// (see docs/protocol.md); status codes are mapped in one place (status.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <arrow/flight/server.h>

#include "base/mutex.h"
#include "flight/watch.h"
#include "key/key.h"

namespace foc {

class UploadBudget;

struct FlightServiceOptions {
  /// The URI put in PutResults and FlightInfo locations, e.g. `grpc://10.0.0.5:9090`.
  /// Empty: `grpc://127.0.0.1:<bound port>` (`grpc+tls://` when TLS is on).
  std::string advertised_endpoint;
  /// Limits of WATCH subscriptions.
  WatchLimits watch = {};
  /// Largest payload one upload may bring (memory-only storage: the memory limit, so
  /// that an upload the store cannot keep is refused as it arrives); 0 = only the 2 GiB
  /// per-payload limit.
  int64_t max_upload_bytes = 0;
  /// What max_upload_bytes is, in the words of whoever set it, for the error that
  /// refuses a larger upload (the server names its configuration key).
  std::string max_upload_name = "the upload size limit";
  /// Bytes all uploads in flight may hold together; null = unlimited.
  std::shared_ptr<UploadBudget> upload_budget;
  /// Produces the body of the INFO action (a JSON document, docs/protocol.md); null =
  /// INFO answers UNIMPLEMENTED.
  std::function<std::string()> info;
  /// MEMBERS: the advertised endpoints of the live servers of this server's cluster.
  /// Null = a single server: MEMBERS answers with advertised_endpoint() alone.
  std::function<std::vector<std::string>()> members;
  /// A linearizable read (ticket `<key>:L<version>`) calls this before reading: it
  /// brings the store's view of the key up to date with the version authority. Null =
  /// the store is its own authority (a single server), so every read is linearizable.
  std::function<arrow::Status(const ObjectKey&)> linearize;
  /// Offer the MAP action to same-machine clients (`cache.zero_copy`, flight/map.h).
  bool zero_copy = true;
};

class Store;

class FlightService : public arrow::flight::FlightServerBase {
 public:
  FlightService(std::shared_ptr<Store> store, FlightServiceOptions options);
  ~FlightService() override;

  /// The endpoint written into PutResults and FlightInfo locations.
  std::string advertised_endpoint() const;

  arrow::Status ListActions(const arrow::flight::ServerCallContext& context,
                            std::vector<arrow::flight::ActionType>* actions) override;
  arrow::Status DoAction(const arrow::flight::ServerCallContext& context,
                         const arrow::flight::Action& action,
                         std::unique_ptr<arrow::flight::ResultStream>* result) override;
  arrow::Status DoPut(
      const arrow::flight::ServerCallContext& context,
      std::unique_ptr<arrow::flight::FlightMessageReader> reader,
      std::unique_ptr<arrow::flight::FlightMetadataWriter> writer) override;
  arrow::Status DoGet(const arrow::flight::ServerCallContext& context,
                      const arrow::flight::Ticket& request,
                      std::unique_ptr<arrow::flight::FlightDataStream>* stream) override;
  arrow::Status GetFlightInfo(const arrow::flight::ServerCallContext& context,
                              const arrow::flight::FlightDescriptor& request,
                              std::unique_ptr<arrow::flight::FlightInfo>* info) override;
  arrow::Status ListFlights(
      const arrow::flight::ServerCallContext& context,
      const arrow::flight::Criteria* criteria,
      std::unique_ptr<arrow::flight::FlightListing>* listings) override;
  arrow::Status GetSchema(const arrow::flight::ServerCallContext& context,
                          const arrow::flight::FlightDescriptor& request,
                          std::unique_ptr<arrow::flight::SchemaResult>* schema) override;
  /// WATCH (command descriptor `WATCH:<bson>`, src/flight/watch.h).
  arrow::Status DoExchange(
      const arrow::flight::ServerCallContext& context,
      std::unique_ptr<arrow::flight::FlightMessageReader> reader,
      std::unique_ptr<arrow::flight::FlightMessageWriter> writer) override;
  /// Ends every WATCH call (UNAVAILABLE, "subscribe again") and refuses new ones: call
  /// before Shutdown(), whose wait would otherwise last until the deadline.
  void StopWatches();

 private:
  arrow::Status DoPutImpl(const arrow::flight::ServerCallContext& context,
                          arrow::flight::FlightMessageReader* reader,
                          arrow::flight::FlightMetadataWriter* writer);

  std::shared_ptr<Store> store_;
  FlightServiceOptions options_;
  // The opaque reply schema of the store's current epoch (an ObjectStore's is fixed when
  // it opens; a node tier's follows its upstream), rebuilt only when the epoch changes,
  // with its IPC encoding: every opaque DoGet starts with that same schema message, and
  // encoding it per call was ~8% of a not-modified check's instructions
  // (docs/benchmarks.md, "Where a small call's time goes").
  struct ResponseSchemaInfo {
    std::shared_ptr<arrow::Schema> schema;
    std::shared_ptr<const arrow::ipc::IpcPayload> payload;  ///< the schema message
  };
  ResponseSchemaInfo ResponseSchemaNow();
  Mutex schema_mu_;
  std::string schema_epoch_ FOC_GUARDED_BY(schema_mu_);
  ResponseSchemaInfo response_schema_ FOC_GUARDED_BY(schema_mu_);
  std::unique_ptr<WatchService> watch_;
};

}  // namespace foc
