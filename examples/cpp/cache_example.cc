// A complete program using the C++ client: put, patch, get, a native table, list, delete.
// Build it against the installed package (examples/cpp/CMakeLists.txt) or in the tree.
//   cache_example [ENDPOINT [CA_FILE]]     default endpoint grpc://127.0.0.1:9090
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <arrow/api.h>

#include "flame_object_cache/cache_client.h"

namespace {

// The PEM text of a file (ClientOptions::tls_root_certs takes the certificates, not a
// path).
arrow::Result<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path);
  if (!in) return arrow::Status::IOError("cannot read ", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

arrow::Status Run(int argc, char** argv) {
  foc::ClientOptions options;
  options.endpoint = argc > 1 ? argv[1] : "grpc://127.0.0.1:9090";  // grpc+tls:// for TLS
  if (argc > 2) {
    ARROW_ASSIGN_OR_RAISE(options.tls_root_certs, ReadPem(argv[2]));
  }
  options.timeout = std::chrono::seconds(30);  // per call; 0 = none
  ARROW_ASSIGN_OR_RAISE(auto client, foc::CacheClient::Connect(options));

  // Opaque bytes: a put under a prefix gets a fresh object id; patches append deltas.
  ARROW_ASSIGN_OR_RAISE(
      foc::ObjectRef ref,
      client->Put("example/session", arrow::Buffer::FromString("base")));
  ARROW_ASSIGN_OR_RAISE(ref, client->Patch(ref, arrow::Buffer::FromString("+delta")));
  ARROW_ASSIGN_OR_RAISE(auto value, client->Get(ref));  // shared_ptr<const ObjectValue>
  std::cout << ref.key << " v" << value->version << ": " << value->base->ToString();
  for (const auto& delta : value->deltas) std::cout << delta.data->ToString();
  std::cout << "\n";

  // A native Arrow table (flamepy reads it back as a pyarrow.Table).
  arrow::Int64Builder builder;
  ARROW_RETURN_NOT_OK(builder.AppendValues({1, 2, 3}));
  ARROW_ASSIGN_OR_RAISE(auto column, builder.Finish());
  auto table =
      arrow::Table::Make(arrow::schema({arrow::field("n", arrow::int64())}), {column});
  ARROW_ASSIGN_OR_RAISE(foc::ObjectRef table_ref,
                        client->PutTable("example/session", table));
  ARROW_ASSIGN_OR_RAISE(auto back, client->GetTable(table_ref));
  std::cout << table_ref.key << ": " << back->num_rows() << " rows\n";

  ARROW_ASSIGN_OR_RAISE(auto listed, client->List());
  std::cout << listed.size() << " objects on the server\n";
  ARROW_RETURN_NOT_OK(client->Delete("example/session"));
  auto gone = client->Get(ref);
  std::cout << "after delete: "
            << (foc::IsObjectNotFound(gone.status()) ? "not found" : "still there")
            << "\n";
  return arrow::Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  arrow::Status status = Run(argc, argv);
  if (!status.ok()) {
    std::cerr << "cache_example: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
