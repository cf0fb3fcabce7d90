#include "cluster/etcd_client.h"

#include <httplib.h>

#include <mutex>
#include <utility>

#include <arrow/util/base64.h>
#include <nlohmann/json.hpp>

namespace foc::cluster {

namespace {

using json = nlohmann::json;

// nlohmann::json reports type mismatches by exceptions; they never leave this file: every
// entry point below that reads a reply catches them and returns arrow::Status.

std::string B64(const std::string& s) { return arrow::util::base64_encode(s); }

std::string Unb64(const json& j) {
  if (!j.is_string()) return "";
  auto r = arrow::util::base64_decode(j.get<std::string>());
  return r.ok() ? *r : std::string();
}

// The gateway writes int64 as a decimal string; accept a number too.
int64_t Int(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return 0;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  if (it->is_number_integer()) return it->get<int64_t>();
  return 0;
}

KeyValue ParseKv(const json& j) {
  KeyValue kv;
  kv.key = Unb64(j.value("key", json()));
  kv.value = Unb64(j.value("value", json()));
  kv.create_revision = Int(j, "create_revision");
  kv.mod_revision = Int(j, "mod_revision");
  kv.version = Int(j, "version");
  kv.lease = Int(j, "lease");
  return kv;
}

std::vector<KeyValue> ParseKvs(const json& j) {
  std::vector<KeyValue> out;
  auto it = j.find("kvs");
  if (it == j.end()) return out;
  for (const auto& kv : *it) out.push_back(ParseKv(kv));
  return out;
}

int64_t HeaderRevision(const json& j) {
  auto it = j.find("header");
  return it == j.end() ? 0 : Int(*it, "revision");
}

// An error object of the gateway: {"error": "...", "message": "...", "code": N}.
arrow::Status ErrorOf(const json& j) {
  auto it = j.find("error");
  if (it == j.end()) return arrow::Status::OK();
  std::string message = j.value("message", it->is_string() ? it->get<std::string>() : "");
  int code = j.value("code", 0);
  if (code == 5) return arrow::Status::KeyError("etcd: ", message);  // gRPC NOT_FOUND
  return arrow::Status::Invalid("etcd: ", message);
}

arrow::Result<json> Parse(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return arrow::Status::IOError("etcd: unreadable reply: ", body.substr(0, 200));
  }
  ARROW_RETURN_NOT_OK(ErrorOf(j));
  return j;
}

template <typename Fn>
auto Guarded(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return arrow::Status::IOError("etcd: malformed reply: ", e.what());
  }
}

const char* TargetName(Compare::Target t) {
  switch (t) {
    case Compare::Target::kVersion:
      return "VERSION";
    case Compare::Target::kCreateRevision:
      return "CREATE";
    case Compare::Target::kModRevision:
      return "MOD";
    case Compare::Target::kValue:
      return "VALUE";
  }
  return "MOD";
}

const char* ResultName(Compare::Result r) {
  switch (r) {
    case Compare::Result::kEqual:
      return "EQUAL";
    case Compare::Result::kNotEqual:
      return "NOT_EQUAL";
    case Compare::Result::kGreater:
      return "GREATER";
    case Compare::Result::kLess:
      return "LESS";
  }
  return "EQUAL";
}

json CompareJson(const Compare& c) {
  json j = {{"key", B64(c.key)},
            {"target", TargetName(c.target)},
            {"result", ResultName(c.result)}};
  // Without it etcd compares the single key `key`: a range compare would then hold
  // vacuously (that key is usually absent), and a DELETE of a session could miss a
  // concurrent PATCH and leave a floor below a version already issued.
  if (!c.range_end.empty()) j["range_end"] = B64(c.range_end);
  switch (c.target) {
    case Compare::Target::kVersion:
      j["version"] = std::to_string(c.number);
      break;
    case Compare::Target::kCreateRevision:
      j["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kModRevision:
      j["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kValue:
      j["value"] = B64(c.value);
      break;
  }
  return j;
}

json OpJson(const TxnOp& op) {
  switch (op.kind) {
    case TxnOp::Kind::kPut: {
      json put = {{"key", B64(op.key)}, {"value", B64(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return {{"request_put", put}};
    }
    case TxnOp::Kind::kDeleteRange: {
      json del = {{"key", B64(op.key)}};
      if (!op.range_end.empty()) del["range_end"] = B64(op.range_end);
      return {{"request_delete_range", del}};
    }
    case TxnOp::Kind::kRange: {
      json range = {{"key", B64(op.key)}};
      if (!op.range_end.empty()) range["range_end"] = B64(op.range_end);
      return {{"request_range", range}};
    }
  }
  return json::object();
}

// "http://host:port" → what httplib::Client takes; refuses other schemes up front.
arrow::Status CheckEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("http://", 0) != 0) {
    return arrow::Status::Invalid("etcd endpoint '", endpoint,
                                  "': only http:// endpoints are supported");
  }
  if (endpoint.size() <= 7)
    return arrow::Status::Invalid("etcd endpoint '", endpoint, "'");
  return arrow::Status::OK();
}

void SetTimeouts(httplib::Client& client, std::chrono::milliseconds timeout) {
  auto sec = static_cast<time_t>(timeout.count() / 1000);
  auto usec = static_cast<time_t>((timeout.count() % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
}

class HttpWatch final : public EtcdWatch {
 public:
  HttpWatch(const std::string& endpoint, std::string body,
            std::chrono::milliseconds connect_timeout, WatchCallback on_events,
            WatchEndCallback on_end)
      : client_(endpoint),
        body_(std::move(body)),
        on_events_(std::move(on_events)),
        on_end_(std::move(on_end)) {
    SetTimeouts(client_, connect_timeout);
    // A watch is idle for as long as nothing changes: only the connection has a deadline.
    client_.set_read_timeout(time_t{24} * 3600, 0);
    thread_ = std::thread([this] { Run(); });
  }

  ~HttpWatch() override { Cancel(); }

  void Cancel() override {
    std::call_once(cancel_once_, [this] {
      cancelled_ = true;
      client_.stop();
      if (thread_.joinable()) thread_.join();
    });
  }

 private:
  void Run() {
    httplib::Request req;
    req.method = "POST";
    req.path = "/v3/watch";
    req.body = body_;
    req.set_header("Content-Type", "application/json");
    arrow::Status end = arrow::Status::OK();
    req.content_receiver = [this, &end](const char* data, size_t len, uint64_t,
                                        uint64_t) {
      if (cancelled_) return false;
      buffer_.append(data, len);
      size_t nl;
      while ((nl = buffer_.find('\n')) != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (line.empty()) continue;
        end = Deliver(line);
        if (!end.ok()) return false;
      }
      return true;
    };
    auto res = client_.send(req);
    if (cancelled_) return;
    if (end.ok()) {
      end = res ? arrow::Status::IOError("etcd watch ended (HTTP ", res->status, ")")
                : arrow::Status::IOError("etcd watch connection lost: ",
                                         httplib::to_string(res.error()));
    }
    if (on_end_) on_end_(end);
  }

  arrow::Status Deliver(const std::string& line) {
    return Guarded([&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(json j, Parse(line));
      auto it = j.find("result");
      if (it == j.end()) return arrow::Status::OK();
      const json& result = *it;
      if (result.value("canceled", false)) {
        int64_t compact = Int(result, "compact_revision");
        return arrow::Status::Invalid("etcd watch cancelled by the server",
                                      compact ? " (start revision compacted, oldest is " +
                                                    std::to_string(compact) + ")"
                                              : std::string());
      }
      auto events = result.find("events");
      if (events == result.end() || events->empty()) return arrow::Status::OK();
      std::vector<WatchEvent> out;
      for (const auto& e : *events) {
        WatchEvent ev;
        ev.type = e.value("type", std::string()) == "DELETE" ? WatchEvent::Type::kDelete
                                                             : WatchEvent::Type::kPut;
        ev.kv = ParseKv(e.value("kv", json::object()));
        out.push_back(std::move(ev));
      }
      on_events_(out, HeaderRevision(result));
      return arrow::Status::OK();
    });
  }

  httplib::Client client_;
  std::string body_;
  WatchCallback on_events_;
  WatchEndCallback on_end_;
  std::string buffer_;  // only touched by the watch thread
  std::atomic<bool> cancelled_{false};
  std::once_flag cancel_once_;
  std::thread thread_;
};

}  // namespace

Compare Compare::Missing(std::string key) {
  return Compare{std::move(key), Target::kCreateRevision, Result::kEqual, 0, {}, {}};
}

Compare Compare::ModRevisionIs(std::string key, int64_t revision) {
  return Compare{std::move(key), Target::kModRevision, Result::kEqual, revision, {}, {}};
}

Compare Compare::RangeUnchangedSince(std::string key, std::string range_end,
                                     int64_t revision) {
  return Compare{
      std::move(key),      Target::kModRevision, Result::kLess, revision + 1, {},
      std::move(range_end)};
}

TxnOp TxnOp::Put(std::string key, std::string value, int64_t lease) {
  return TxnOp{Kind::kPut, std::move(key), std::move(value), {}, lease};
}

TxnOp TxnOp::Delete(std::string key, std::string range_end) {
  return TxnOp{Kind::kDeleteRange, std::move(key), {}, std::move(range_end), 0};
}

TxnOp TxnOp::Get(std::string key, std::string range_end) {
  return TxnOp{Kind::kRange, std::move(key), {}, std::move(range_end), 0};
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd's convention for "to the end")
}

EtcdClient::EtcdClient(EtcdOptions options) : options_(std::move(options)) {}
EtcdClient::~EtcdClient() = default;

arrow::Result<std::unique_ptr<EtcdClient>> EtcdClient::Make(EtcdOptions options) {
  if (options.endpoints.empty()) return arrow::Status::Invalid("no etcd endpoints");
  for (const auto& e : options.endpoints) ARROW_RETURN_NOT_OK(CheckEndpoint(e));
  if (options.request_timeout.count() <= 0) {
    return arrow::Status::Invalid("etcd request timeout must be positive");
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(options)));
}

arrow::Result<std::string> EtcdClient::Call(const std::string& path,
                                            const std::string& body) {
  const size_t n = options_.endpoints.size();
  const size_t first = preferred_.load();
  std::string failures;
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (first + i) % n;
    const std::string& endpoint = options_.endpoints[index];
    httplib::Client client(endpoint);
    SetTimeouts(client, options_.request_timeout);
    // The body is collected by a receiver rather than taken from the response: the
    // gateway ends error replies with an HTTP trailer (Grpc-Trailer-Content-Type) that
    // cpp-httplib 0.11 cannot parse, so such a reply "fails" after its whole JSON body
    // has arrived.
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body;
    req.set_header("Content-Type", "application/json");
    std::string reply;
    req.content_receiver = [&reply](const char* data, size_t len, uint64_t, uint64_t) {
      reply.append(data, len);
      return true;
    };
    auto res = client.send(req);
    const bool complete_json = !reply.empty() && reply.back() == '}';
    if (!res && !complete_json) {
      failures += (failures.empty() ? "" : "; ") + endpoint + ": " +
                  httplib::to_string(res.error());
      continue;
    }
    if (res && res->status == 503) {  // no leader (election in progress) on this member
      failures += (failures.empty() ? "" : "; ") + endpoint + ": unavailable";
      continue;
    }
    if (res && res->status >= 500 && reply.empty()) {
      failures += (failures.empty() ? "" : "; ") + endpoint + ": HTTP " +
                  std::to_string(res->status);
      continue;
    }
    preferred_.store(index);
    return reply;
  }
  return arrow::Status::IOError("etcd unreachable (", failures, ")");
}

arrow::Result<int64_t> EtcdClient::Put(const std::string& key, const std::string& value,
                                       int64_t lease) {
  json req = {{"key", B64(key)}, {"value", B64(value)}};
  if (lease != 0) req["lease"] = std::to_string(lease);
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/kv/put", req.dump()));
  return Guarded([&]() -> arrow::Result<int64_t> {
    ARROW_ASSIGN_OR_RAISE(json j, Parse(body));
    return HeaderRevision(j);
  });
}

arrow::Result<RangeResult> EtcdClient::Range(const std::string& key,
                                             const std::string& range_end, int64_t limit,
                                             int64_t revision) {
  json req = {{"key", B64(key)}};
  if (!range_end.empty()) req["range_end"] = B64(range_end);
  if (limit > 0) req["limit"] = std::to_string(limit);
  if (revision > 0) req["revision"] = std::to_string(revision);
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/kv/range", req.dump()));
  return Guarded([&]() -> arrow::Result<RangeResult> {
    ARROW_ASSIGN_OR_RAISE(json j, Parse(body));
    RangeResult out;
    out.kvs = ParseKvs(j);
    out.revision = HeaderRevision(j);
    out.more = j.value("more", false);
    return out;
  });
}

arrow::Result<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  ARROW_ASSIGN_OR_RAISE(auto r, Range(key));
  if (r.kvs.empty()) return std::nullopt;
  return std::move(r.kvs.front());
}

arrow::Result<int64_t> EtcdClient::Delete(const std::string& key,
                                          const std::string& range_end) {
  json req = {{"key", B64(key)}};
  if (!range_end.empty()) req["range_end"] = B64(range_end);
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/kv/deleterange", req.dump()));
  return Guarded([&]() -> arrow::Result<int64_t> {
    ARROW_ASSIGN_OR_RAISE(json j, Parse(body));
    return Int(j, "deleted");
  });
}

arrow::Result<TxnResult> EtcdClient::Txn(const std::vector<Compare>& compares,
                                         const std::vector<TxnOp>& success,
                                         const std::vector<TxnOp>& failure) {
  json req = {
      {"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) req["compare"].push_back(CompareJson(c));
  for (const auto& op : success) req["success"].push_back(OpJson(op));
  for (const auto& op : failure) req["failure"].push_back(OpJson(op));
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/kv/txn", req.dump()));
  return Guarded([&]() -> arrow::Result<TxnResult> {
    ARROW_ASSIGN_OR_RAISE(json j, Parse(body));
    TxnResult out;
    out.succeeded = j.value("succeeded", false);
    out.revision = HeaderRevision(j);
    auto responses = j.find("responses");
    if (responses != j.end()) {
      for (const auto& r : *responses) {
        std::vector<KeyValue> kvs;
        int64_t deleted = 0;
        if (auto it = r.find("response_range"); it != r.end()) kvs = ParseKvs(*it);
        if (auto it = r.find("response_delete_range"); it != r.end()) {
          deleted = Int(*it, "deleted");
        }
        out.ranges.push_back(std::move(kvs));
        out.deleted.push_back(deleted);
      }
    }
    // The gateway omits empty responses; keep one entry per operation of the branch.
    const size_t ops = (out.succeeded ? success : failure).size();
    out.ranges.resize(ops);
    out.deleted.resize(ops);
    return out;
  });
}

arrow::Result<int64_t> EtcdClient::GrantLease(int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return arrow::Status::Invalid("lease TTL must be positive");
  json req = {{"TTL", std::to_string(ttl_seconds)}};
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/lease/grant", req.dump()));
  return Guarded([&]() -> arrow::Result<int64_t> {
    ARROW_ASSIGN_OR_RAISE(json j, Parse(body));
    if (j.contains("error") || Int(j, "ID") == 0) {
      return arrow::Status::Invalid("etcd: lease not granted: ", body.substr(0, 200));
    }
    return Int(j, "ID");
  });
}

arrow::Result<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  json req = {{"ID", std::to_string(lease)}};
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/lease/keepalive", req.dump()));
  return Guarded([&]() -> arrow::Result<int64_t> {
    // A stream reply: one line {"result": {...}} per request message.
    auto line = body.substr(0, body.find('\n'));
    ARROW_ASSIGN_OR_RAISE(json j, Parse(line));
    const json& result = j.contains("result") ? j["result"] : j;
    int64_t ttl = Int(result, "TTL");
    if (ttl <= 0) return arrow::Status::KeyError("etcd lease ", lease, " expired");
    return ttl;
  });
}

arrow::Status EtcdClient::RevokeLease(int64_t lease) {
  json req = {{"ID", std::to_string(lease)}};
  ARROW_ASSIGN_OR_RAISE(auto body, Call("/v3/lease/revoke", req.dump()));
  return Guarded([&]() -> arrow::Status {
    auto j = Parse(body);
    if (!j.ok() && j.status().IsKeyError()) return arrow::Status::OK();  // already gone
    return j.status();
  });
}

arrow::Result<std::unique_ptr<EtcdWatch>> EtcdClient::Watch(const std::string& key,
                                                            const std::string& range_end,
                                                            int64_t start_revision,
                                                            WatchCallback on_events,
                                                            WatchEndCallback on_end) {
  if (!on_events) return arrow::Status::Invalid("a watch needs an event callback");
  json create = {{"key", B64(key)}};
  if (!range_end.empty()) create["range_end"] = B64(range_end);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  json req = {{"create_request", create}};
  // The watch connects to the endpoint that answered last; reconnecting elsewhere is the
  // watcher's job (on_end), since it must resynchronise anyway.
  const std::string& endpoint = options_.endpoints[preferred_.load()];
  return std::unique_ptr<EtcdWatch>(
      new HttpWatch(endpoint, req.dump(), options_.request_timeout, std::move(on_events),
                    std::move(on_end)));
}

}  // namespace foc::cluster
