// flame-cache: a command-line tool for flame-object-cache on top of the C++ client
// (include/flame_object_cache/cache_client.h). See docs/cli.md.
//
// Structure: global options live in `Globals` (add a new one there and in AddGlobals);
// each command is one Add<Command>() that declares its options and a callback run by
// CLI11 after parsing. Every callback reports through Context::Fail, which gives the
// documented error form `flame-cache: [not found: ]<operation> <key>: <reason>` and the
// exit codes: 0 success, 1 error, 2 usage error (also: an input file that does not
// exist), 3 object not found.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/pretty_print.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "client/atomic_file.h"
#include "flame_object_cache/cache_client.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;

struct Globals {
  std::string endpoint;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string override_hostname;
  std::string token;
  double timeout = 0;
  bool discover = false;
  bool linearizable = false;
  bool json = false;
  bool no_progress = false;
};

// ---------------------------------------------------------------------------------------------
// Progress bars (upload, download) on stderr: only when stderr is a terminal, the
// transfer is at least kProgressThreshold bytes, and --no-progress is not given.

constexpr int64_t kProgressThreshold = int64_t{4} << 20;

std::string HumanBytes(int64_t n);

class ProgressBar {
 public:
  /// `total` < 0: unknown (no percentage or ETA).
  ProgressBar(const Globals& g, std::string label, int64_t total)
      : label_(std::move(label)),
        total_(total),
        enabled_(!g.no_progress && isatty(STDERR_FILENO) == 1 &&
                 (total < 0 || total >= kProgressThreshold)),
        start_(std::chrono::steady_clock::now()) {}
  ~ProgressBar() { Finish(); }

  void Update(int64_t done) {
    if (!enabled_) return;
    done_ = done;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done != total_) return;
    last_ = now;
    Draw(now);
  }
  void Finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    if (drawn_) {
      Draw(std::chrono::steady_clock::now());
      std::fputc('\n', stderr);
    }
  }

 private:
  void Draw(std::chrono::steady_clock::time_point now) {
    drawn_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
    std::string line = label_ + " ";
    if (total_ > 0) {
      const double fraction =
          std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
      const int width = 24;
      const int full = static_cast<int>(fraction * width);
      line += "[" + std::string(static_cast<size_t>(full), '#') +
              std::string(static_cast<size_t>(width - full), '.') + "] ";
      char pct[16];
      std::snprintf(pct, sizeof(pct), "%3d%% ", static_cast<int>(fraction * 100));
      line += pct;
      line += HumanBytes(done_) + " / " + HumanBytes(total_);
    } else {
      line += HumanBytes(done_);
    }
    line += "  " + HumanBytes(static_cast<int64_t>(rate)) + "/s";
    if (total_ > 0 && rate > 0) {
      const auto eta = static_cast<int64_t>(static_cast<double>(total_ - done_) / rate);
      char buf[32];
      std::snprintf(buf, sizeof(buf), "  ETA %lld:%02lld",
                    static_cast<long long>(eta / 60), static_cast<long long>(eta % 60));
      line += buf;
    }
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    std::fflush(stderr);
  }

  const std::string label_;
  const int64_t total_;
  const bool enabled_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  int64_t done_ = 0;
  bool drawn_ = false;
  bool finished_ = false;
};

// ---------------------------------------------------------------------------------------------
// Output helpers

// A JSON string literal (nlohmann-json's escaping; bytes that are not UTF-8, e.g. in a
// file name, become U+FFFD instead of an exception or invalid JSON).
std::string JsonString(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// 1536 -> "1.5 KiB"; below 1 KiB exact bytes.
std::string HumanBytes(int64_t n) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int unit = 0;
  while (v >= 1024 && unit < 5) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(n));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

std::string RefJson(const foc::ObjectRef& ref) {
  return "{\"key\":" + JsonString(ref.key) +
         ",\"version\":" + std::to_string(ref.version) + "}";
}

// ---------------------------------------------------------------------------------------------
// Context: the parsed globals, the exit code and the (lazily connected) client.

class Context {
 public:
  Globals globals;
  int exit_code = kExitOk;

  // Reports `st` for `<operation> <subject>` and sets the exit code.
  void Fail(std::string_view operation, std::string_view subject,
            const arrow::Status& st) {
    // Arrow appends gRPC's debug context to Flight errors; it repeats the message.
    std::string message = st.message();
    if (auto cut = message.find(". gRPC client debug context:");
        cut != std::string::npos) {
      message.resize(cut);
    }
    // The client's messages already start with "<operation> <key>: "; others get it here.
    std::string head = std::string(operation);
    if (!subject.empty()) head += " " + std::string(subject);
    if (!message.starts_with(std::string(operation) + " "))
      message = head + ": " + message;
    const bool not_found = foc::IsObjectNotFound(st);
    std::fprintf(stderr, "flame-cache: %s%s\n", not_found ? "not found: " : "",
                 message.c_str());
    exit_code = not_found ? kExitNotFound : kExitError;
  }
  void Usage(std::string_view operation, std::string_view subject, std::string_view why) {
    std::fprintf(stderr, "flame-cache: %.*s %.*s: %.*s\n",
                 static_cast<int>(operation.size()), operation.data(),
                 static_cast<int>(subject.size()), subject.data(),
                 static_cast<int>(why.size()), why.data());
    exit_code = kExitUsage;
  }

  // The client, connected on first use; null after reporting the failure.
  foc::CacheClient* Client(std::string_view operation, std::string_view subject);

  // Where the client's transfer_progress goes (set around Upload/Download).
  ProgressBar* progress = nullptr;

 private:
  std::unique_ptr<foc::CacheClient> client_;
};

arrow::Result<std::string> ReadSmallFile(const std::string& path, const char* what) {
  auto file = arrow::io::ReadableFile::Open(path);
  if (!file.ok()) return arrow::Status::IOError("cannot read ", what, " ", path);
  ARROW_ASSIGN_OR_RAISE(auto size, (*file)->GetSize());
  ARROW_ASSIGN_OR_RAISE(auto buf, (*file)->Read(size));
  return buf->ToString();
}

foc::CacheClient* Context::Client(std::string_view operation, std::string_view subject) {
  if (client_) return client_.get();
  const Globals& g = globals;
  if (g.cert_file.empty() != g.key_file.empty()) {
    std::fprintf(stderr, "flame-cache: --cert and --key go together\n");
    exit_code = kExitUsage;
    return nullptr;
  }
  foc::ClientOptions options;
  options.endpoint = g.endpoint;
  options.discover = g.discover;
  options.linearizable = g.linearizable;
  options.timeout = std::chrono::duration<double>(g.timeout);
  options.override_hostname = g.override_hostname;
  options.token = g.token;
  // One-shot process: the cache only matters within a call.
  options.cache_max_entries = 16;
  options.transfer_progress = [this](int64_t bytes) {
    if (progress) progress->Update(bytes);
  };
  auto read = [&](const std::string& path, const char* what, std::string* out) {
    if (path.empty()) return true;
    auto text = ReadSmallFile(path, what);
    if (!text.ok()) {
      Fail(operation, subject, text.status());
      return false;
    }
    *out = *std::move(text);
    return true;
  };
  if (!read(g.ca_file, "CA file", &options.tls_root_certs) ||
      !read(g.cert_file, "certificate", &options.cert_chain) ||
      !read(g.key_file, "private key", &options.private_key)) {
    return nullptr;
  }
  auto connected = foc::CacheClient::Connect(options);
  if (!connected.ok()) {
    Fail(operation, subject, connected.status());
    return nullptr;
  }
  client_ = *std::move(connected);
  return client_.get();
}

// ---------------------------------------------------------------------------------------------
// Input and output

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

// An input file named on the command line must exist (exit 2, like a usage error); "-" is
// standard input.
bool CheckInputFile(Context& ctx, std::string_view operation, const std::string& target,
                    const std::string& path) {
  if (path == "-") return true;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return true;
  ctx.Usage(operation, target, "no such file: " + path);
  return false;
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

void PrintRef(const Context& ctx, const foc::ObjectRef& ref) {
  if (ctx.globals.json) {
    std::printf("%s\n", RefJson(ref).c_str());
  } else {
    std::printf("%s\t%llu\n", ref.key.c_str(),
                static_cast<unsigned long long>(ref.version));
  }
}

// ---------------------------------------------------------------------------------------------
// get --decode: the Python SDK's payload tags
// (python/flame_object_cache/serialization.py).

arrow::Result<std::string> PrettyTable(const arrow::Table& table) {
  std::string out = table.schema()->ToString(/*show_metadata=*/false) + "\n";
  out += std::to_string(table.num_rows()) + " rows\n";
  std::stringstream s;
  arrow::PrettyPrintOptions opts;
  opts.window = 20;
  for (int i = 0; i < table.num_columns(); ++i) {
    s << table.field(i)->name() << ": ";
    ARROW_RETURN_NOT_OK(arrow::PrettyPrint(*table.column(i), opts, &s));
    s << "\n";
  }
  return out + s.str();
}

arrow::Result<std::shared_ptr<arrow::Table>> ReadIpcStream(
    const std::shared_ptr<arrow::Buffer>& data) {
  auto input = std::make_shared<arrow::io::BufferReader>(data);
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input));
  return reader->ToTable();
}

// A human description of one opaque payload.
arrow::Result<std::string> DecodePayload(const std::shared_ptr<arrow::Buffer>& data) {
  const std::string_view bytes(reinterpret_cast<const char*>(data->data()),
                               static_cast<size_t>(data->size()));
  if (bytes.size() < 4 || !bytes.starts_with(std::string_view("FLM", 3))) {
    return "raw bytes (" + HumanBytes(data->size()) +
           ", no SDK format tag; as written by `flame-cache put`):\n" +
           std::string(bytes) + (bytes.ends_with('\n') ? "" : "\n");
  }
  const auto body = arrow::SliceBuffer(data, 4);
  switch (bytes[3]) {
    case '\0':
      return "a Python object (cloudpickle, " + HumanBytes(data->size()) +
             "): only Python can decode it; use the Python SDK "
             "(flame_object_cache.get_object)\n";
    case '\1':
      // Arrow's tensor IPC reader is deprecated (Arrow 26); the SDK decodes these.
      return "a numpy array (Arrow tensor message, " + HumanBytes(data->size()) +
             "): decode it with the Python SDK (flame_object_cache.get_object)\n";
    case '\2': {
      ARROW_ASSIGN_OR_RAISE(auto table, ReadIpcStream(body));
      ARROW_ASSIGN_OR_RAISE(auto text, PrettyTable(*table));
      return "pyarrow.Table:\n" + text;
    }
    case '\3': {
      ARROW_ASSIGN_OR_RAISE(auto table, ReadIpcStream(body));
      ARROW_ASSIGN_OR_RAISE(auto text, PrettyTable(*table));
      return "pyarrow.Array:\n" + text;
    }
    case '\4': {
      ARROW_ASSIGN_OR_RAISE(auto table, ReadIpcStream(body));
      ARROW_ASSIGN_OR_RAISE(auto text, PrettyTable(*table));
      return "pyarrow.RecordBatch:\n" + text;
    }
    default:
      return "unknown SDK format tag FLM\\x" +
             std::to_string(static_cast<int>(bytes[3])) + " (" +
             HumanBytes(data->size()) + ")\n";
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

void AddPut(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "put", "store a file (or - for stdin); prints <key>\\t<version>");
  auto target = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  cmd->add_option("target", *target,
                  "<app>/<session> (new object) or <app>/<session>/<object>")
      ->required();
  cmd->add_option("file", *input, "file to store, - for standard input")->required();
  cmd->callback([&ctx, target, input] {
    if (!CheckInputFile(ctx, "put", *target, *input)) return;
    auto data = ReadInput(*input);
    if (!data.ok()) return ctx.Fail("put", *target, data.status());
    auto* client = ctx.Client("put", *target);
    if (!client) return;
    auto r = client->Put(*target, *data);
    if (!r.ok()) return ctx.Fail("put", *target, r.status());
    PrintRef(ctx, *r);
  });
}

void AddGet(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "get", "write an object (base, then its deltas; a table as an Arrow IPC stream)");
  auto key = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto decode = std::make_shared<bool>(false);
  cmd->add_option("key", *key, "<app>/<session>/<object>")->required();
  cmd->add_option("-o,--output", *output, "output file (default: standard output)");
  cmd->add_flag("--decode", *decode,
                "describe the value: print tables, name the Python SDK's formats");
  cmd->callback([&ctx, key, output, decode] {
    if (ctx.globals.json && output->empty() && !*decode) {
      return ctx.Usage("get", *key, "--json needs -o FILE (the bytes go to the file)");
    }
    auto* client = ctx.Client("get", *key);
    if (!client) return;
    auto v = client->Get(client->RefFor(*key, 0));
    if (!v.ok()) return ctx.Fail("get", *key, v.status());
    const auto& value = **v;
    if (*decode) {
      std::string text;
      if (value.is_table()) {
        auto t = PrettyTable(*value.table);
        if (!t.ok()) return ctx.Fail("get", *key, t.status());
        text = "native Arrow table:\n" + *t;
      } else {
        auto base = DecodePayload(value.base);
        if (!base.ok()) return ctx.Fail("get", *key, base.status());
        text = "base (version " + std::to_string(value.base_version) + "): " + *base;
        for (const auto& d : value.deltas) {
          auto part = DecodePayload(d.data);
          if (!part.ok()) return ctx.Fail("get", *key, part.status());
          text += "delta (version " + std::to_string(d.version) + "): " + *part;
        }
      }
      if (ctx.globals.json) {
        std::printf("{\"key\":%s,\"version\":%llu,\"description\":%s}\n",
                    JsonString(*key).c_str(),
                    static_cast<unsigned long long>(value.version),
                    JsonString(text).c_str());
      } else {
        std::fputs(text.c_str(), stdout);
      }
      return;
    }
    std::vector<std::shared_ptr<arrow::Buffer>> parts;
    if (value.is_table()) {
      auto ipc = TableToIpcStream(*value.table);
      if (!ipc.ok()) return ctx.Fail("get", *key, ipc.status());
      parts.push_back(*ipc);
    } else {
      parts.push_back(value.base);
      for (const auto& d : value.deltas) parts.push_back(d.data);
    }
    if (auto st = WriteOutput(*output, parts); !st.ok()) return ctx.Fail("get", *key, st);
    if (ctx.globals.json) {
      int64_t bytes = 0;
      for (const auto& p : parts) bytes += p->size();
      std::printf("{\"key\":%s,\"version\":%llu,\"bytes\":%lld,\"file\":%s}\n",
                  JsonString(*key).c_str(),
                  static_cast<unsigned long long>(value.version),
                  static_cast<long long>(bytes), JsonString(*output).c_str());
    }
  });
}

void AddPatch(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("patch", "append a delta; prints <key>\\t<version>");
  auto key = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  cmd->add_option("key", *key, "<app>/<session>/<object>")->required();
  cmd->add_option("file", *input, "delta file, - for standard input")->required();
  cmd->callback([&ctx, key, input] {
    if (!CheckInputFile(ctx, "patch", *key, *input)) return;
    auto data = ReadInput(*input);
    if (!data.ok()) return ctx.Fail("patch", *key, data.status());
    auto* client = ctx.Client("patch", *key);
    if (!client) return;
    auto r = client->Patch(client->RefFor(*key, 0), *data);
    if (!r.ok()) return ctx.Fail("patch", *key, r.status());
    PrintRef(ctx, *r);
  });
}

// Keys of `listed` under `prefix` by whole path components: "" = all, "a/s" = a/s and
// a/s/..., never a/s1/...; a trailing '/' is ignored; "a/*" = a/....
bool UnderPrefix(std::string_view key, std::string_view prefix) {
  if (prefix.ends_with("/*")) prefix.remove_suffix(1);
  while (prefix.ends_with('/')) prefix.remove_suffix(1);
  if (prefix.empty()) return true;
  return key == prefix || (key.starts_with(prefix) && key[prefix.size()] == '/');
}

void AddDelete(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "delete", "delete objects: <app>/*, <app>/<session> or a key; prints what went");
  auto pattern = std::make_shared<std::string>();
  cmd->add_option("pattern", *pattern, "what to delete")->required();
  cmd->callback([&ctx, pattern] {
    auto* client = ctx.Client("delete", *pattern);
    if (!client) return;
    // DELETE's reply carries no count (docs/protocol.md): list what matches first. An
    // object written between the listing and the delete is deleted but not reported.
    auto parsed = foc::KeyPattern::Parse(*pattern);
    if (!parsed.ok()) return ctx.Fail("delete", *pattern, parsed.status());
    std::vector<std::string> matched;
    if (auto listed = client->List(); listed.ok()) {
      for (const auto& o : *listed) {
        auto key = foc::ObjectKey::Parse(o.key);
        if (key.ok() && parsed->Matches(*key)) matched.push_back(o.key);
      }
    }
    if (auto st = client->Delete(*pattern); !st.ok())
      return ctx.Fail("delete", *pattern, st);
    std::sort(matched.begin(), matched.end());
    if (ctx.globals.json) {
      std::string keys;
      for (const auto& k : matched) keys += (keys.empty() ? "" : ",") + JsonString(k);
      std::printf("{\"pattern\":%s,\"deleted\":%zu,\"keys\":[%s]}\n",
                  JsonString(*pattern).c_str(), matched.size(), keys.c_str());
      return;
    }
    for (const auto& k : matched) std::printf("deleted %s\n", k.c_str());
    std::printf("%zu object%s deleted\n", matched.size(), matched.size() == 1 ? "" : "s");
  });
}

void AddUpload(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "upload",
      "stream a file in 1 MiB rows (never held in memory); prints <key>\\t<version>");
  auto target = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  cmd->add_option("target", *target, "<app>/<session> or <app>/<session>/<object>")
      ->required();
  cmd->add_option("file", *input, "file to upload")->required();
  cmd->callback([&ctx, target, input] {
    if (*input == "-" || !CheckInputFile(ctx, "upload", *target, *input)) {
      if (*input == "-") ctx.Usage("upload", *target, "needs a file (put reads stdin)");
      return;
    }
    auto* client = ctx.Client("upload", *target);
    if (!client) return;
    std::error_code ec;
    const auto size = std::filesystem::file_size(*input, ec);
    ProgressBar bar(ctx.globals, "upload " + *target,
                    ec ? -1 : static_cast<int64_t>(size));
    ctx.progress = &bar;
    auto r = client->Upload(*target, *input);
    ctx.progress = nullptr;
    bar.Finish();
    if (!r.ok()) return ctx.Fail("upload", *target, r.status());
    PrintRef(ctx, *r);
  });
}

void AddDownload(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "download",
      "write an object's base to a file (atomically; nothing left on failure)");
  auto key = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  cmd->add_option("key", *key, "<app>/<session>/<object>")->required();
  cmd->add_option("file", *output, "destination file")->required();
  cmd->callback([&ctx, key, output] {
    auto* client = ctx.Client("download", *key);
    if (!client) return;
    // The size for the bar comes from the listing (one extra call, only for a terminal).
    int64_t total = -1;
    if (!ctx.globals.no_progress && isatty(STDERR_FILENO) == 1) {
      if (auto listed = client->List(); listed.ok()) {
        for (const auto& o : *listed) {
          if (o.key == *key) total = o.bytes;
        }
      }
    }
    auto st = [&] {
      ProgressBar bar(ctx.globals, "download " + *key, total);
      ctx.progress = &bar;
      auto done = client->Download(client->RefFor(*key, 0), *output);
      ctx.progress = nullptr;
      return done;
    }();
    if (!st.ok()) return ctx.Fail("download", *key, st);
    if (ctx.globals.json) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(*output, ec);
      std::printf("{\"key\":%s,\"file\":%s,\"bytes\":%lld}\n", JsonString(*key).c_str(),
                  JsonString(*output).c_str(), ec ? -1LL : static_cast<long long>(size));
    }
  });
}

void AddLs(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "ls", "list objects by whole path components: key, version, size; then totals");
  auto prefix = std::make_shared<std::string>();
  auto bytes = std::make_shared<bool>(false);
  cmd->add_option("prefix", *prefix, "<app>, <app>/<session> or a key (default: all)");
  cmd->add_flag("-b,--bytes", *bytes, "exact byte counts instead of KiB/MiB/GiB");
  cmd->callback([&ctx, prefix, bytes] {
    auto* client = ctx.Client("ls", *prefix);
    if (!client) return;
    auto listed = client->List();
    if (!listed.ok()) return ctx.Fail("ls", *prefix, listed.status());
    std::vector<foc::ListedObject> rows;
    for (auto& o : *listed) {
      if (UnderPrefix(o.key, *prefix)) rows.push_back(std::move(o));
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    int64_t total = 0;
    for (const auto& o : rows) total += o.bytes;
    // kind: "opaque" (bytes: pickled, raw, a file) or "table" (a native Arrow table);
    // "-" / null when the server does not say (upstream's).
    if (ctx.globals.json) {
      std::string items;
      for (const auto& o : rows) {
        items += (items.empty() ? "" : ",") + std::string("{\"key\":") +
                 JsonString(o.key) + ",\"version\":" + std::to_string(o.version) +
                 ",\"kind\":" + (o.kind.empty() ? "null" : JsonString(o.kind)) +
                 ",\"bytes\":" + std::to_string(o.bytes) + "}";
      }
      std::printf("{\"objects\":[%s],\"count\":%zu,\"total_bytes\":%lld}\n",
                  items.c_str(), rows.size(), static_cast<long long>(total));
      return;
    }
    size_t width = 3;
    for (const auto& o : rows) width = std::max(width, o.key.size());
    auto size_of = [&](int64_t n) { return *bytes ? std::to_string(n) : HumanBytes(n); };
    std::printf("%-*s  %8s  %-6s  %12s\n", static_cast<int>(width), "KEY", "VERSION",
                "KIND", "SIZE");
    for (const auto& o : rows) {
      std::printf("%-*s  %8llu  %-6s  %12s\n", static_cast<int>(width), o.key.c_str(),
                  static_cast<unsigned long long>(o.version),
                  o.kind.empty() ? "-" : o.kind.c_str(), size_of(o.bytes).c_str());
    }
    std::printf("%zu object%s, %s\n", rows.size(), rows.size() == 1 ? "" : "s",
                size_of(total).c_str());
  });
}

void AddStat(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "stat", "show an object's version, kind, deltas and size (metadata only)");
  auto key = std::make_shared<std::string>();
  cmd->add_option("key", *key, "<app>/<session>/<object>")->required();
  cmd->callback([&ctx, key] {
    auto* client = ctx.Client("stat", *key);
    if (!client) return;
    auto s = client->Stat(client->RefFor(*key, 0));
    if (!s.ok()) return ctx.Fail("stat", *key, s.status());
    const char* kind = s->is_table ? "table" : "opaque";
    const std::string deltas = s->delta_count < 0
                                   ? std::string(ctx.globals.json ? "null" : "unknown")
                                   : std::to_string(s->delta_count);
    if (ctx.globals.json) {
      std::printf(
          "{\"key\":%s,\"version\":%llu,\"kind\":\"%s\",\"deltas\":%s,"
          "\"total_bytes\":%lld}\n",
          JsonString(s->key).c_str(), static_cast<unsigned long long>(s->version), kind,
          deltas.c_str(), static_cast<long long>(s->total_bytes));
      return;
    }
    std::printf("key: %s\nversion: %llu\nkind: %s\ndeltas: %s\ntotal_bytes: %lld (%s)\n",
                s->key.c_str(), static_cast<unsigned long long>(s->version), kind,
                deltas.c_str(), static_cast<long long>(s->total_bytes),
                HumanBytes(s->total_bytes).c_str());
  });
}

// `info`: the server's INFO document (docs/protocol.md), as it came (--json) or as
// `section` headers and `name: value` lines like Redis INFO.
void PrintInfoValue(const std::string& name, const nlohmann::json& v, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    std::printf("%s%s:\n", pad.c_str(), name.c_str());
    for (const auto& [k, child] : v.items()) PrintInfoValue(k, child, indent + 2);
    return;
  }
  std::string text = v.is_string() ? v.get<std::string>() : v.dump();
  if (v.is_null()) text = "n/a";
  // Byte counts also in human form.
  if (v.is_number_integer() && name.ends_with("bytes") && v.get<int64_t>() >= 1024)
    text += " (" + HumanBytes(v.get<int64_t>()) + ")";
  if ((name == "limit_bytes" || name == "capacity_bytes" || name == "max_objects") &&
      v.is_number_integer() && v.get<int64_t>() == 0)
    text = "0 (unlimited)";
  std::printf("%s%s: %s\n", pad.c_str(), name.c_str(), text.c_str());
}

void AddInfo(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "info",
      "server status: objects, memory and disk use vs limits, hit ratio, evictions, "
      "requests, uptime, version");
  cmd->callback([&ctx] {
    auto* client = ctx.Client("info", ctx.globals.endpoint);
    if (!client) return;
    auto doc = client->Info();
    if (!doc.ok()) return ctx.Fail("info", ctx.globals.endpoint, doc.status());
    auto parsed = nlohmann::json::parse(*doc, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return ctx.Fail("info", ctx.globals.endpoint,
                      arrow::Status::IOError("the server's INFO reply is not JSON"));
    }
    if (ctx.globals.json) {
      std::printf("%s\n", parsed.dump().c_str());
      return;
    }
    // Scalars first (version, uptime, objects ...), then one section per object.
    for (const auto& [k, v] : parsed.items()) {
      if (!v.is_object()) PrintInfoValue(k, v, 0);
    }
    for (const auto& [k, v] : parsed.items()) {
      if (v.is_object()) PrintInfoValue(k, v, 0);
    }
  });
}

void AddGlobals(CLI::App& app, Globals& g) {
  const char* env_endpoint = std::getenv("FLAME_CACHE_ENDPOINT");
  const char* env_ca = std::getenv("FLAME_CA_FILE");
  g.endpoint = env_endpoint && *env_endpoint ? env_endpoint : "grpc://127.0.0.1:9090";
  g.ca_file = env_ca ? env_ca : "";
  const char* env_token = std::getenv("FLAME_CACHE_TOKEN");
  g.token = env_token ? env_token : "";
  app.add_option("--endpoint", g.endpoint,
                 "server endpoint: grpc://, grpc+tcp://, http:// (plaintext) or "
                 "grpc+tls://, grpcs://, "
                 "https:// (TLS) host:port; several servers of one cluster "
                 "comma-separated (each key goes to one, failing over to the next); "
                 "default $FLAME_CACHE_ENDPOINT, else grpc://127.0.0.1:9090")
      ->capture_default_str();
  app.add_flag("--discover", g.discover,
               "route over the cluster's live members, asked from --endpoint (MEMBERS)");
  app.add_flag("--linearizable", g.linearizable,
               "reads reflect every write acknowledged before them, through any server "
               "of a cluster (one etcd read on the server)");
  app.add_option("--ca-file", g.ca_file,
                 "PEM root certificates for TLS (default $FLAME_CA_FILE)");
  app.add_option("--cert", g.cert_file, "PEM client certificate for mutual TLS");
  app.add_option("--key", g.key_file, "PEM private key of --cert");
  app.add_option("--override-hostname", g.override_hostname,
                 "host name to verify in the server certificate");
  app.add_option("--token", g.token,
                 "bearer token for servers with cache.auth (default $FLAME_CACHE_TOKEN)");
  app.add_option("--timeout", g.timeout, "deadline of each call in seconds (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", g.json,
               "machine-readable output: one JSON document per command");
  app.add_flag(
      "--no-progress", g.no_progress,
      "no progress bars (they appear only on a terminal, for transfers >= 4 MiB)");
}

// Levenshtein distance, for "did you mean".
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] =
          std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The command a mistyped or familiar word probably meant ("" if none).
std::string Suggest(std::string_view word, const std::vector<std::string>& commands) {
  static const std::pair<std::string_view, std::string_view> kAliases[] = {
      {"list", "ls"},       {"dir", "ls"},        {"rm", "delete"},     {"del", "delete"},
      {"remove", "delete"}, {"cat", "get"},       {"read", "get"},      {"write", "put"},
      {"set", "put"},       {"append", "patch"},  {"status", "info"},   {"cp", "upload"},
      {"push", "upload"},   {"pull", "download"}, {"fetch", "download"}};
  for (const auto& [alias, command] : kAliases) {
    if (word == alias) return std::string(command);
  }
  std::string best;
  size_t best_distance = 3;  // at most two edits
  for (const auto& c : commands) {
    const size_t d = Distance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

// The first command word of argv, skipping global options (and their values).
std::optional<std::string> FirstWord(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") return std::nullopt;
    if (!arg.starts_with("-")) return std::string(arg);
    if (arg.find('=') != std::string_view::npos) continue;
    const std::string name(arg.substr(arg.starts_with("--") ? 2 : 1));
    try {
      const CLI::Option* opt =
          app.get_option(arg.starts_with("--") ? "--" + name : "-" + name);
      if (opt->get_items_expected_min() > 0) ++i;  // an option with a value
    } catch (const CLI::OptionNotFound&) {
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  // gRPC's own logging (absl's "All log messages before absl::InitializeLog()", TLS
  // handshake lines from ssl_transport_security.cc) is not for CLI users: errors are
  // reported here. Must be set before the first channel; a value set by the user wins.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);

  CLI::App app{
      "flame-cache: store, read and manage objects in a flame-object-cache server"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--json, --endpoint ...) also after the command
  app.set_version_flag("--version", std::string(FOC_VERSION));

  Context ctx;
  AddGlobals(app, ctx.globals);
  AddPut(app, ctx);
  AddGet(app, ctx);
  AddPatch(app, ctx);
  AddDelete(app, ctx);
  AddUpload(app, ctx);
  AddDownload(app, ctx);
  AddLs(app, ctx);
  AddStat(app, ctx);
  AddInfo(app, ctx);

  std::vector<std::string> commands;
  for (const auto* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  if (auto word = FirstWord(app, argc, argv);
      word && std::find(commands.begin(), commands.end(), *word) == commands.end()) {
    const std::string suggestion = Suggest(*word, commands);
    std::fprintf(
        stderr, "flame-cache: unknown command '%s'%s\n", word->c_str(),
        suggestion.empty() ? "" : ("; did you mean '" + suggestion + "'?").c_str());
    std::fprintf(stderr, "Run with --help for the list of commands.\n");
    return kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (ctx.exit_code != kExitOk) return ctx.exit_code;
  return std::fflush(stdout) == 0 ? kExitOk : kExitError;
}
