// Authentication and per-app authorization (docs/security.md).
//
// Who a caller is, first match wins:
//   1. a bearer token in the `authorization` header (`Bearer <token>`), looked up by its
//      SHA-256 digest in the tokens file; an unknown token is refused (UNAUTHENTICATED);
//   2. with mutual TLS, the client certificate's identity as gRPC reports it (its first
//      subject alternative name, else its common name; Flight's
//      ServerCallContext::peer_identity()), matched against `tls_identity` entries;
//   3. anonymous: `cache.auth.anonymous` (none, read or write on every app).
//
// What a caller may do: grants of `read`, `write` or `admin` on app-name patterns
// (`*` and `?` wildcards); admin includes write, write includes read. Every RPC calls
// Authorize() before it touches the store. Without a `cache.auth` section the
// middleware is not installed and Authorize() allows everything (as before).
//
// The tokens file (YAML):
//
//   identities:
//     - name: trainer                      # used in logs and error messages
//       token_sha256: 5e8848…              # hex SHA-256 of the token (or a list)
//       tls_identity: trainer.example.org  # optional: mTLS peer identity
//       grants:
//         "train-*": write
//         "shared": read
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/flight/server_middleware.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "base/mutex.h"

namespace arrow::flight {
class ServerCallContext;
}

namespace foc {

/// Rights, ordered: each includes the ones below it.
enum class Right { kNone = 0, kRead = 1, kWrite = 2, kAdmin = 3 };

/// "read", "write", "admin", "none".
std::string_view RightName(Right right);

struct Grant {
  std::string apps;  ///< app-name pattern (fnmatch: `*`, `?`, `[...]`)
  Right right = Right::kNone;
};

struct Identity {
  std::string name;
  std::vector<Grant> grants;
  /// The highest right on `app` (kNone when no grant matches).
  Right RightOn(std::string_view app) const;
};

/// The parsed tokens file plus the anonymous rule: immutable, replaced whole on reload.
class AuthPolicy {
 public:
  /// Parses the tokens file text (`source` names it in messages); `anonymous` is
  /// "none", "read" or "write".
  static arrow::Result<std::shared_ptr<const AuthPolicy>> Parse(
      std::string_view yaml, const std::string& source, const std::string& anonymous);
  /// Reads and parses `path` (empty: no identities, only the anonymous rule).
  static arrow::Result<std::shared_ptr<const AuthPolicy>> Load(
      const std::string& path, const std::string& anonymous);

  /// The identity whose token has this SHA-256 (lowercase hex), or null.
  std::shared_ptr<const Identity> ByTokenDigest(const std::string& digest) const;
  /// The identity with this mTLS peer identity, or null.
  std::shared_ptr<const Identity> ByTlsIdentity(const std::string& peer) const;
  /// The anonymous caller (its grants follow `cache.auth.anonymous`).
  const std::shared_ptr<const Identity>& anonymous() const { return anonymous_; }
  size_t size() const { return identities_.size(); }

 private:
  std::vector<std::shared_ptr<const Identity>> identities_;
  std::map<std::string, std::shared_ptr<const Identity>> by_digest_;
  std::map<std::string, std::shared_ptr<const Identity>> by_tls_;
  std::shared_ptr<const Identity> anonymous_;
};

/// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

/// The Flight middleware that authenticates every call (see above).
class AuthMiddlewareFactory : public arrow::flight::ServerMiddlewareFactory {
 public:
  static constexpr const char* kKey = "foc-auth";

  AuthMiddlewareFactory(std::string tokens_file, std::string anonymous);

  /// Loads the tokens file; on failure the previous policy stays in force.
  arrow::Status Reload();

  arrow::Status StartCall(
      const arrow::flight::CallInfo& info,
      const arrow::flight::ServerCallContext& context,
      std::shared_ptr<arrow::flight::ServerMiddleware>* middleware) override;

  /// Counts a refusal (UNAUTHENTICATED or PERMISSION_DENIED).
  void CountRefusal(bool unauthenticated);
  /// Prometheus text: foc_auth_refused_total{code=…}.
  void Render(std::string* out) const;

 private:
  std::shared_ptr<const AuthPolicy> policy() const;

  const std::string tokens_file_;
  const std::string anonymous_;
  mutable Mutex mu_;
  std::shared_ptr<const AuthPolicy> policy_ FOC_GUARDED_BY(mu_);
  std::atomic<int64_t> unauthenticated_{0};
  std::atomic<int64_t> denied_{0};
};

/// The one authorization check every RPC makes before touching the store: OK when the
/// caller of `context` holds `needed` on `app` (or no authentication is configured);
/// else UNAUTHENTICATED (an anonymous caller) or PERMISSION_DENIED, naming `what` (the
/// key or pattern; truncated), the app and the missing right. Counted in metrics.
arrow::Status Authorize(const arrow::flight::ServerCallContext& context,
                        std::string_view app, Right needed, std::string_view what);

/// Whether the caller may read `app` (for filtering listings; not counted as refusal).
bool MayRead(const arrow::flight::ServerCallContext& context, std::string_view app);

}  // namespace foc
