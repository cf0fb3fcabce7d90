// flame-cache: a command-line tool for flame-object-cache on top of the C++ client
// (src/client/cache_client.h). See docs/cli.md.
//
// Exit codes: 0 success, 1 error, 2 usage error, 3 object not found.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <arrow/table.h>
#include <CLI/CLI.hpp>

#include "client/atomic_file.h"
#include "client/cache_client.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;

int Fail(const arrow::Status& st) {
  // Arrow appends gRPC's debug context to Flight errors; it repeats the message.
  std::string message = st.message();
  if (auto cut = message.find(". gRPC client debug context:"); cut != std::string::npos) {
    message.resize(cut);
  }
  std::fprintf(stderr, "flame-cache: %s%s\n",
               foc::IsObjectNotFound(st) ? "not found: " : "", message.c_str());
  return foc::IsObjectNotFound(st) ? kExitNotFound : kExitError;
}

arrow::Result<std::string> ReadSmallFile(const std::string& path, const char* what) {
  auto file = arrow::io::ReadableFile::Open(path);
  if (!file.ok()) return arrow::Status::IOError("cannot read ", what, " ", path);
  ARROW_ASSIGN_OR_RAISE(auto size, (*file)->GetSize());
  ARROW_ASSIGN_OR_RAISE(auto buf, (*file)->Read(size));
  return buf->ToString();
}

// The bytes of `path`, or of standard input for "-". A file is memory-mapped, so a put
// sends it without reading it into a buffer first.
arrow::Result<std::shared_ptr<arrow::Buffer>> ReadInput(const std::string& path) {
  if (path == "-") {
    std::string data;
    char chunk[1 << 16];
    size_t n;
    while ((n = std::fread(chunk, 1, sizeof(chunk), stdin)) > 0) data.append(chunk, n);
    if (std::ferror(stdin)) return arrow::Status::IOError("cannot read standard input");
    return arrow::Buffer::FromString(std::move(data));
  }
  auto file = arrow::io::MemoryMappedFile::Open(path, arrow::io::FileMode::READ);
  if (!file.ok()) {
    return arrow::Status::IOError("cannot read ", path, ": ", file.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(auto size, (*file)->GetSize());
  if (size == 0) return std::make_shared<arrow::Buffer>(nullptr, 0);
  return (*file)->ReadAt(0, size);
}

// Writes `parts` in order to `path` (atomically: temp file + rename) or to standard
// output.
arrow::Status WriteOutput(const std::string& path,
                          const std::vector<std::shared_ptr<arrow::Buffer>>& parts) {
  if (path.empty() || path == "-") {
    for (const auto& p : parts) {
      if (p->size() > 0 && std::fwrite(p->data(), 1, static_cast<size_t>(p->size()),
                                       stdout) != static_cast<size_t>(p->size())) {
        return arrow::Status::IOError("cannot write to standard output");
      }
    }
    if (std::fflush(stdout) != 0)
      return arrow::Status::IOError("cannot write to standard output");
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto file, foc::AtomicFileWriter::Open(path));
  for (const auto& p : parts) ARROW_RETURN_NOT_OK(file->Write(p->data(), p->size()));
  return file->Commit();
}

arrow::Result<std::shared_ptr<arrow::Buffer>> TableToIpcStream(
    const arrow::Table& table) {
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeStreamWriter(sink, table.schema()));
  ARROW_RETURN_NOT_OK(writer->WriteTable(table));
  ARROW_RETURN_NOT_OK(writer->Close());
  return sink->Finish();
}

void PrintRef(const foc::ObjectRef& ref) {
  std::printf("%s\t%llu\n", ref.key.c_str(),
              static_cast<unsigned long long>(ref.version));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "flame-cache: store, read and manage objects in a flame-object-cache server"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(FOC_VERSION));

  const char* env_endpoint = std::getenv("FLAME_CACHE_ENDPOINT");
  const char* env_ca = std::getenv("FLAME_CA_FILE");
  std::string endpoint =
      env_endpoint && *env_endpoint ? env_endpoint : "grpc://127.0.0.1:9090";
  std::string ca_file = env_ca ? env_ca : "";
  std::string cert_file, key_file, override_hostname;
  double timeout = 0;
  app.add_option(
         "--endpoint", endpoint,
         "server endpoint: grpc://host:port, grpc+tls:// or grpcs:// (TLS); default "
         "$FLAME_CACHE_ENDPOINT, else grpc://127.0.0.1:9090")
      ->capture_default_str();
  app.add_option("--ca-file", ca_file,
                 "PEM root certificates for TLS (default $FLAME_CA_FILE)");
  app.add_option("--cert", cert_file, "PEM client certificate for mutual TLS");
  app.add_option("--key", key_file, "PEM private key of --cert");
  app.add_option("--override-hostname", override_hostname,
                 "host name to verify in the server certificate");
  app.add_option("--timeout", timeout, "deadline of each call in seconds (0: none)")
      ->check(CLI::NonNegativeNumber);
  const char* env_token = std::getenv("FLAME_CACHE_TOKEN");
  std::string token = env_token ? env_token : "";
  app.add_option("--token", token,
                 "bearer token for servers with cache.auth (default $FLAME_CACHE_TOKEN)");

  std::string target, input, output, pattern, prefix;

  auto* put = app.add_subcommand(
      "put", "store a file (or - for stdin); prints <key>\\t<version>");
  put->add_option("target", target,
                  "<app>/<session> (new object) or <app>/<session>/<object>")
      ->required();
  put->add_option("file", input, "file to store, - for standard input")->required();

  auto* get = app.add_subcommand(
      "get", "write an object (base, then its deltas; a table as an Arrow IPC stream)");
  get->add_option("key", target, "<app>/<session>/<object>")->required();
  get->add_option("-o,--output", output, "output file (default: standard output)");

  auto* patch = app.add_subcommand("patch", "append a delta; prints <key>\\t<version>");
  patch->add_option("key", target, "<app>/<session>/<object>")->required();
  patch->add_option("file", input, "delta file, - for standard input")->required();

  auto* del =
      app.add_subcommand("delete", "delete objects: <app>/*, <app>/<session> or a key");
  del->add_option("pattern", pattern, "what to delete")->required();

  auto* upload = app.add_subcommand(
      "upload",
      "stream a file in 1 MiB rows (never held in memory); prints <key>\\t<version>");
  upload->add_option("target", target, "<app>/<session> or <app>/<session>/<object>")
      ->required();
  upload->add_option("file", input, "file to upload")
      ->required()
      ->check(CLI::ExistingFile);

  auto* download = app.add_subcommand(
      "download",
      "write an object's base to a file (atomically; nothing left on failure)");
  download->add_option("key", target, "<app>/<session>/<object>")->required();
  download->add_option("file", output, "destination file")->required();

  auto* ls = app.add_subcommand("ls", "list objects: <key>\\t<bytes> per line");
  ls->add_option("prefix", prefix, "only keys starting with this");

  auto* stat = app.add_subcommand("stat", "show an object's version and sizes");
  stat->add_option("key", target, "<app>/<session>/<object>")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  foc::ClientOptions options;
  options.endpoint = endpoint;
  options.timeout = std::chrono::duration<double>(timeout);
  options.token = token;
  options.override_hostname = override_hostname;
  options.cache_max_entries =
      16;  // one-shot process: the cache only matters within a call
  if (!ca_file.empty()) {
    auto pem = ReadSmallFile(ca_file, "CA file");
    if (!pem.ok()) return Fail(pem.status());
    options.tls_root_certs = *pem;
  }
  if (cert_file.empty() != key_file.empty()) {
    std::fprintf(stderr, "flame-cache: --cert and --key go together\n");
    return kExitUsage;
  }
  if (!cert_file.empty()) {
    auto cert = ReadSmallFile(cert_file, "certificate");
    if (!cert.ok()) return Fail(cert.status());
    auto key = ReadSmallFile(key_file, "private key");
    if (!key.ok()) return Fail(key.status());
    options.cert_chain = *cert;
    options.private_key = *key;
  }
  auto connected = foc::CacheClient::Connect(options);
  if (!connected.ok()) return Fail(connected.status());
  auto& client = **connected;
  // A key named on the command line lives at the configured endpoint; version 0 = read it
  // whole.
  const foc::ObjectRef ref = client.RefFor(target, 0);

  arrow::Status st;
  if (*put) {
    auto data = ReadInput(input);
    if (!data.ok()) return Fail(data.status());
    auto r = client.Put(target, *data);
    if (!r.ok()) return Fail(r.status());
    PrintRef(*r);
  } else if (*get) {
    auto v = client.Get(ref);
    if (!v.ok()) return Fail(v.status());
    std::vector<std::shared_ptr<arrow::Buffer>> parts;
    if ((*v)->is_table()) {
      auto ipc = TableToIpcStream(*(*v)->table);
      if (!ipc.ok()) return Fail(ipc.status());
      parts.push_back(*ipc);
    } else {
      parts.push_back((*v)->base);
      for (const auto& d : (*v)->deltas) parts.push_back(d.data);
    }
    st = WriteOutput(output, parts);
  } else if (*patch) {
    auto data = ReadInput(input);
    if (!data.ok()) return Fail(data.status());
    auto r = client.Patch(ref, *data);
    if (!r.ok()) return Fail(r.status());
    PrintRef(*r);
  } else if (*del) {
    st = client.Delete(pattern);
  } else if (*upload) {
    auto r = client.Upload(target, input);
    if (!r.ok()) return Fail(r.status());
    PrintRef(*r);
  } else if (*download) {
    st = client.Download(ref, output);
  } else if (*ls) {
    auto listed = client.List();
    if (!listed.ok()) return Fail(listed.status());
    for (const auto& o : *listed) {
      if (!o.key.starts_with(prefix)) continue;
      std::printf("%s\t%lld\n", o.key.c_str(), static_cast<long long>(o.bytes));
    }
  } else if (*stat) {
    auto s = client.Stat(ref);
    if (!s.ok()) return Fail(s.status());
    std::printf(
        "key: %s\nversion: %llu\nbase_version: %llu\nformat: %s\nbase_bytes: %lld\n"
        "deltas: %lld\ntotal_bytes: %lld\n",
        s->key.c_str(), static_cast<unsigned long long>(s->version),
        static_cast<unsigned long long>(s->base_version),
        s->is_table ? "arrow-table" : "bytes", static_cast<long long>(s->base_bytes),
        static_cast<long long>(s->delta_count), static_cast<long long>(s->total_bytes));
  }
  if (!st.ok()) return Fail(st);
  return std::fflush(stdout) == 0 ? kExitOk : kExitError;
}
