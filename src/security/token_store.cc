#include "security/token_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace ferry::security {
namespace {

absl::Time ModificationTime(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return absl::InfinitePast();
  return absl::TimeFromTimespec(info.st_mtim);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenStore>> TokenStore::Open(
    std::string path, absl::Duration refresh_interval) {
  std::unique_ptr<TokenStore> store(new TokenStore(std::move(path), refresh_interval));
  const absl::Time mtime =
      store->path_.empty() ? absl::InfinitePast() : ModificationTime(store->path_);
  auto table = store->Load();
  if (!table.ok()) return table.status();
  absl::MutexLock lock(&store->mu_);
  store->table_ = *std::move(table);
  store->loaded_mtime_ = mtime;
  store->next_check_ = absl::Now() + refresh_interval;
  return store;
}

absl::StatusOr<std::shared_ptr<const TokenTable>> TokenStore::Load() const {
  if (path_.empty()) return std::make_shared<const TokenTable>();
  std::ifstream file(path_);
  std::stringstream content;
  content << file.rdbuf();
  if (!file) {
    return absl::InvalidArgumentError(fmt::format(
        "auth.tokens_file: cannot read \"{}\" (missing or not readable)", path_));
  }
  auto table = TokenTable::Parse(content.str());
  if (!table.ok()) {
    return absl::InvalidArgumentError(fmt::format("auth.tokens_file: \"{}\": {}", path_,
                                                  std::string(table.status().message())));
  }
  return std::make_shared<const TokenTable>(*std::move(table));
}

std::shared_ptr<const TokenTable> TokenStore::Current() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (path_.empty() || now < next_check_) return table_;
  next_check_ = now + refresh_interval_;
  const absl::Time mtime = ModificationTime(path_);
  if (mtime == loaded_mtime_) return table_;
  // A small file read once per interval at most; under the lock so that
  // concurrent calls do not read it twice.
  auto table = Load();
  if (!table.ok()) {
    spdlog::warn(
        "tokens file changed but cannot be used (keeping the previous "
        "tokens): {}",
        std::string(table.status().message()));
    return table_;
  }
  spdlog::info("tokens reloaded from {}: {} tokens", path_, (*table)->size());
  table_ = *std::move(table);
  loaded_mtime_ = mtime;
  return table_;
}

absl::StatusOr<std::string> TokenStore::Authenticate(std::string_view token) {
  return Current()->Authenticate(token, absl::Now());
}

}  // namespace ferry::security
