#include "flight/auth.h"

#include <fnmatch.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include <arrow/flight/server.h>
#include <arrow/flight/types.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

namespace foc {
namespace fl = arrow::flight;

namespace {

arrow::Result<Right> ParseRight(const std::string& text, const std::string& where) {
  if (text == "read") return Right::kRead;
  if (text == "write") return Right::kWrite;
  if (text == "admin") return Right::kAdmin;
  return arrow::Status::Invalid(where, ": invalid right '", text,
                                "' (expected read, write or admin)");
}

bool IsHexDigest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Shorten(std::string_view s) {
  constexpr size_t kMax = 200;
  if (s.size() <= kMax) return std::string(s);
  return std::string(s.substr(0, kMax)) + "... (" + std::to_string(s.size()) + " bytes)";
}

class AuthMiddleware : public fl::ServerMiddleware {
 public:
  AuthMiddleware(AuthMiddlewareFactory* factory, std::shared_ptr<const Identity> identity,
                 bool anonymous)
      : factory_(factory), identity_(std::move(identity)), anonymous_(anonymous) {}
  std::string name() const override { return "AuthMiddleware"; }
  void SendingHeaders(fl::AddCallHeaders*) override {}
  void CallCompleted(const arrow::Status&) override {}

  AuthMiddlewareFactory* factory_;
  std::shared_ptr<const Identity> identity_;
  bool anonymous_;
};

}  // namespace

std::string_view RightName(Right right) {
  switch (right) {
    case Right::kRead:
      return "read";
    case Right::kWrite:
      return "write";
    case Right::kAdmin:
      return "admin";
    case Right::kNone:
      break;
  }
  return "none";
}

Right Identity::RightOn(std::string_view app) const {
  const std::string a(app);
  Right best = Right::kNone;
  for (const auto& g : grants) {
    if (g.right > best && fnmatch(g.apps.c_str(), a.c_str(), 0) == 0) best = g.right;
  }
  return best;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

arrow::Result<std::shared_ptr<const AuthPolicy>> AuthPolicy::Parse(
    std::string_view yaml, const std::string& source, const std::string& anonymous) {
  auto policy = std::make_shared<AuthPolicy>();
  auto anon = std::make_shared<Identity>();
  anon->name = "anonymous";
  if (anonymous == "read" || anonymous == "write") {
    anon->grants.push_back({"*", anonymous == "read" ? Right::kRead : Right::kWrite});
  }
  policy->anonymous_ = std::move(anon);
  if (yaml.empty()) return policy;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(source, ": not valid YAML: ", e.what());
  }
  const YAML::Node list = root["identities"];
  if (!list || !list.IsSequence()) {
    return arrow::Status::Invalid(source, ": expected a list 'identities'");
  }
  try {
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& n = list[i];
      const std::string where = source + ": identities[" + std::to_string(i) + "]";
      if (!n.IsMap()) return arrow::Status::Invalid(where, ": expected a mapping");
      auto id = std::make_shared<Identity>();
      if (!n["name"] || n["name"].Scalar().empty()) {
        return arrow::Status::Invalid(where, ": 'name' is required");
      }
      id->name = n["name"].Scalar();
      if (const YAML::Node grants = n["grants"]) {
        if (!grants.IsMap()) {
          return arrow::Status::Invalid(where,
                                        ".grants: expected a mapping of app "
                                        "pattern to read, write or admin");
        }
        for (const auto& g : grants) {
          ARROW_ASSIGN_OR_RAISE(auto right,
                                ParseRight(g.second.Scalar(), where + ".grants"));
          id->grants.push_back({g.first.Scalar(), right});
        }
      }
      std::vector<std::string> digests;
      if (const YAML::Node t = n["token_sha256"]) {
        if (t.IsSequence()) {
          for (const auto& d : t) digests.push_back(Lower(d.Scalar()));
        } else {
          digests.push_back(Lower(t.Scalar()));
        }
      }
      for (const auto& d : digests) {
        if (!IsHexDigest(d)) {
          return arrow::Status::Invalid(
              where, ".token_sha256: expected 64 hex digits (sha256sum of the token)");
        }
        if (!policy->by_digest_.emplace(d, id).second) {
          return arrow::Status::Invalid(where, ": the same token digest is listed twice");
        }
      }
      if (const YAML::Node tls = n["tls_identity"]) {
        if (!policy->by_tls_.emplace(tls.Scalar(), id).second) {
          return arrow::Status::Invalid(where, ": tls_identity '", tls.Scalar(),
                                        "' is listed twice");
        }
      }
      if (digests.empty() && !n["tls_identity"]) {
        return arrow::Status::Invalid(where, " (", id->name,
                                      "): needs token_sha256 or tls_identity");
      }
      policy->identities_.push_back(std::move(id));
    }
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(source, ": ", e.what());
  }
  return policy;
}

arrow::Result<std::shared_ptr<const AuthPolicy>> AuthPolicy::Load(
    const std::string& path, const std::string& anonymous) {
  if (path.empty()) return Parse("", "", anonymous);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return arrow::Status::IOError("cannot read cache.auth.tokens_file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path, anonymous);
}

std::shared_ptr<const Identity> AuthPolicy::ByTokenDigest(const std::string& d) const {
  auto it = by_digest_.find(d);
  return it == by_digest_.end() ? nullptr : it->second;
}

std::shared_ptr<const Identity> AuthPolicy::ByTlsIdentity(const std::string& p) const {
  auto it = by_tls_.find(p);
  return it == by_tls_.end() ? nullptr : it->second;
}

AuthMiddlewareFactory::AuthMiddlewareFactory(std::string tokens_file,
                                             std::string anonymous)
    : tokens_file_(std::move(tokens_file)), anonymous_(std::move(anonymous)) {}

arrow::Status AuthMiddlewareFactory::Reload() {
  ARROW_ASSIGN_OR_RAISE(auto loaded, AuthPolicy::Load(tokens_file_, anonymous_));
  MutexLock lock(&mu_);
  policy_ = std::move(loaded);
  return arrow::Status::OK();
}

std::shared_ptr<const AuthPolicy> AuthMiddlewareFactory::policy() const {
  MutexLock lock(&mu_);
  return policy_;
}

arrow::Status AuthMiddlewareFactory::StartCall(
    const fl::CallInfo&, const fl::ServerCallContext& context,
    std::shared_ptr<fl::ServerMiddleware>* middleware) {
  auto p = policy();
  if (!p) return arrow::Status::IOError("authentication is not loaded");
  const auto& headers = context.incoming_headers();
  auto it = headers.find("authorization");
  if (it != headers.end()) {
    std::string_view value = it->second;
    constexpr std::string_view kBearer = "Bearer ";
    if (value.size() > kBearer.size() &&
        Lower(std::string(value.substr(0, kBearer.size()))) == "bearer ") {
      const std::string digest = Sha256Hex(value.substr(kBearer.size()));
      if (auto id = p->ByTokenDigest(digest)) {
        *middleware = std::make_shared<AuthMiddleware>(this, std::move(id), false);
        return arrow::Status::OK();
      }
    }
    CountRefusal(true);
    return arrow::Status::IOError(
               "UNAUTHENTICATED: the bearer token in the authorization header is not "
               "known to this server")
        .WithDetail(std::make_shared<fl::FlightStatusDetail>(
            fl::FlightStatusCode::Unauthenticated));
  }
  if (!context.peer_identity().empty()) {
    if (auto id = p->ByTlsIdentity(context.peer_identity())) {
      *middleware = std::make_shared<AuthMiddleware>(this, std::move(id), false);
      return arrow::Status::OK();
    }
  }
  *middleware = std::make_shared<AuthMiddleware>(this, p->anonymous(), true);
  return arrow::Status::OK();
}

void AuthMiddlewareFactory::CountRefusal(bool unauthenticated) {
  (unauthenticated ? unauthenticated_ : denied_)++;
}

void AuthMiddlewareFactory::Render(std::string* out) const {
  *out +=
      "# HELP foc_auth_refused_total Calls refused by authentication or authorization.\n"
      "# TYPE foc_auth_refused_total counter\n";
  *out += "foc_auth_refused_total{code=\"UNAUTHENTICATED\"} " +
          std::to_string(unauthenticated_.load()) + "\n";
  *out += "foc_auth_refused_total{code=\"PERMISSION_DENIED\"} " +
          std::to_string(denied_.load()) + "\n";
}

arrow::Status Authorize(const fl::ServerCallContext& context, std::string_view app,
                        Right needed, std::string_view what) {
  auto* m =
      static_cast<AuthMiddleware*>(context.GetMiddleware(AuthMiddlewareFactory::kKey));
  if (!m) return arrow::Status::OK();
  if (m->identity_->RightOn(app) >= needed) return arrow::Status::OK();
  m->factory_->CountRefusal(m->anonymous_);
  if (m->anonymous_) {
    return arrow::Status::IOError("UNAUTHENTICATED: '", Shorten(what), "' needs ",
                                  RightName(needed), " on app '", Shorten(app),
                                  "', which anonymous clients do not have; send a token "
                                  "(authorization: Bearer <token>)")
        .WithDetail(std::make_shared<fl::FlightStatusDetail>(
            fl::FlightStatusCode::Unauthenticated));
  }
  return arrow::Status::IOError("PERMISSION_DENIED: '", Shorten(what), "' needs ",
                                RightName(needed), " on app '", Shorten(app), "'; ",
                                m->identity_->name, " does not have it")
      .WithDetail(
          std::make_shared<fl::FlightStatusDetail>(fl::FlightStatusCode::Unauthorized));
}

bool MayRead(const fl::ServerCallContext& context, std::string_view app) {
  auto* m =
      static_cast<AuthMiddleware*>(context.GetMiddleware(AuthMiddlewareFactory::kKey));
  return !m || m->identity_->RightOn(app) >= Right::kRead;
}

}  // namespace foc
