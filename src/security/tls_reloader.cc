#include "security/tls_reloader.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace ferry::security {
namespace {

absl::Time ModificationTime(const std::string& path) {
  struct stat info {};
  if (path.empty() || stat(path.c_str(), &info) != 0) return absl::InfinitePast();
  return absl::TimeFromTimespec(info.st_mtim);
}

// OpenSSL's certificate callback: runs once per handshake, before the
// server's certificate is sent and before it decides to ask for the client's.
int SelectCertificate(SSL* ssl, void* reloader) {
  auto* self = static_cast<TlsReloader*>(reloader);
  return self->Current()->ApplyTo(ssl, self->certificate_optional()) ? 1 : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsReloader>> TlsReloader::Start(
    config::TlsConfig tls, bool certificate_optional) {
  std::unique_ptr<TlsReloader> reloader(
      new TlsReloader(std::move(tls), certificate_optional));
  std::vector<absl::Time> times = reloader->ModificationTimes();
  auto material = TlsMaterial::Load(reloader->tls_);
  if (!material.ok()) return material.status();
  absl::MutexLock lock(&reloader->mu_);
  reloader->current_ = *std::move(material);
  reloader->loaded_times_ = std::move(times);
  reloader->next_check_ = absl::Now() + reloader->tls_.refresh_interval;
  return reloader;
}

std::vector<absl::Time> TlsReloader::ModificationTimes() const {
  return {ModificationTime(tls_.cert), ModificationTime(tls_.key),
          ModificationTime(tls_.client_ca)};
}

std::shared_ptr<const TlsMaterial> TlsReloader::Current() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (now < next_check_) return current_;
  next_check_ = now + tls_.refresh_interval;
  std::vector<absl::Time> times = ModificationTimes();
  if (times == loaded_times_) return current_;
  // Loading reads three small files: cheap enough to do under the lock,
  // once per interval, and it keeps concurrent handshakes from loading twice.
  auto material = TlsMaterial::Load(tls_);
  if (!material.ok()) {
    spdlog::warn("TLS files changed but cannot be used (keeping the previous ones): {}",
                 std::string(material.status().message()));
    return current_;
  }
  spdlog::info("TLS certificate reloaded from {}", tls_.cert);
  current_ = *std::move(material);
  loaded_times_ = std::move(times);
  return current_;
}

void TlsReloader::Install(SSL_CTX& ctx) {
  SSL_CTX_set_cert_cb(&ctx, SelectCertificate, this);
}

}  // namespace ferry::security
