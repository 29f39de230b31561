#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "security/tls_material.h"

namespace ferry::security {

// Serves the newest listen.tls.* files to TLS handshakes: at most once per
// refresh_interval a handshake looks at the files' modification times and
// loads them again when one changed. A bad new file (half-written, key not
// matching yet) is logged and the previous material stays in use, so a
// rotation written file by file never takes the listener down. Connections
// already established keep their session. Thread-safe.
class TlsReloader {
 public:
  // Fails like TlsMaterial::Load when the files are unusable at start-up.
  // `certificate_optional` as in TlsMaterial::ApplyTo.
  static absl::StatusOr<std::unique_ptr<TlsReloader>> Start(
      config::TlsConfig tls, bool certificate_optional = false);

  // The material for the next handshake (reloaded first when due).
  std::shared_ptr<const TlsMaterial> Current();

  // Makes every connection accepted by `ctx` take its certificate from this
  // reloader. `ctx` must not outlive it.
  void Install(SSL_CTX& ctx);
  bool certificate_optional() const { return certificate_optional_; }

 private:
  TlsReloader(config::TlsConfig tls, bool certificate_optional)
      : tls_(std::move(tls)), certificate_optional_(certificate_optional) {}
  std::vector<absl::Time> ModificationTimes() const;

  const config::TlsConfig tls_;
  const bool certificate_optional_;
  absl::Mutex mu_;
  std::shared_ptr<const TlsMaterial> current_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> loaded_times_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::security
