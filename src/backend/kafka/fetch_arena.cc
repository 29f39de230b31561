#include "backend/kafka/fetch_arena.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "backend/kafka/arena_purger.h"
#include "common/jemalloc_control.h"

namespace ferry::backend::kafka {
namespace {

constexpr char kInterceptorName[] = "ferry-fetch-arena";
// How often the purger looks whether fetching has stopped: an idle arena
// gives its pages back within one to two intervals.
constexpr std::chrono::seconds kPurgeInterval{10};

bool SetDecay(unsigned arena, const char* which, ssize_t milliseconds) {
  const std::string name = fmt::format("arena.{}.{}", arena, which);
  const int error =
      mallctl(name.c_str(), nullptr, nullptr, &milliseconds, sizeof(milliseconds));
  if (error != 0) {
    spdlog::warn(
        "fetch arena: mallctl {} failed ({}); fetch threads use the default arenas", name,
        strerror(error));
    return false;
  }
  return true;
}

std::optional<unsigned> CreateArena() {
  if (mallctl == nullptr) {
    spdlog::debug(
        "fetch arena: the allocator is not jemalloc; fetch threads use the default "
        "arenas");
    return std::nullopt;
  }
  unsigned arena = 0;
  size_t size = sizeof(arena);
  if (const int error = mallctl("arenas.create", &arena, &size, nullptr, 0); error != 0) {
    spdlog::warn(
        "fetch arena: mallctl arenas.create failed ({}); fetch threads use the default "
        "arenas",
        strerror(error));
    return std::nullopt;
  }
  // Dirty pages are never purged by decay (ArenaPurger gives them back once
  // fetching stops); no muzzy stage, as for the other arenas.
  if (!SetDecay(arena, "dirty_decay_ms", -1) || !SetDecay(arena, "muzzy_decay_ms", 0)) {
    return std::nullopt;
  }
  spdlog::debug(
      "fetch arena: librdkafka's consumer broker threads allocate from arena {}", arena);
  return arena;
}

rd_kafka_resp_err_t OnThreadStart(rd_kafka_t* /*handle*/, rd_kafka_thread_type_t type,
                                  const char* /*name*/, void* /*opaque*/) {
  if (type == RD_KAFKA_THREAD_BROKER) BindToFetchArena();
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_resp_err_t OnNew(rd_kafka_t* handle, const rd_kafka_conf_t* /*conf*/,
                          void* /*opaque*/, char* /*error*/, size_t /*error_size*/) {
  const rd_kafka_resp_err_t error = rd_kafka_interceptor_add_on_thread_start(
      handle, kInterceptorName, &OnThreadStart, nullptr);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("fetch arena: on_thread_start interceptor: {}", rd_kafka_err2str(error));
  }
  // A failure here only loses the arena, never the handle.
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace

std::optional<unsigned> FetchArenaIndex() {
  static const std::optional<unsigned> arena = CreateArena();
  // Started with the arena, stopped and joined at exit (destroyed before
  // spdlog's registry, which was created before it).
  static const std::unique_ptr<ArenaPurger> purger =
      arena ? std::make_unique<ArenaPurger>(*arena, kPurgeInterval) : nullptr;
  return arena;
}

bool BindToFetchArena() {
  std::optional<unsigned> arena = FetchArenaIndex();
  if (!arena) return false;
  if (const int error =
          mallctl("thread.arena", nullptr, nullptr, &*arena, sizeof(*arena));
      error != 0) {
    static std::atomic<bool> logged{false};
    if (!logged.exchange(true)) {
      spdlog::warn("fetch arena: mallctl thread.arena failed ({}); thread left unbound",
                   strerror(error));
    }
    return false;
  }
  return true;
}

void UseFetchArena(rd_kafka_conf_t* conf) {
  if (!FetchArenaIndex()) return;
  const rd_kafka_resp_err_t error =
      rd_kafka_conf_interceptor_add_on_new(conf, kInterceptorName, &OnNew, nullptr);
  if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("fetch arena: on_new interceptor: {}", rd_kafka_err2str(error));
  }
}

}  // namespace ferry::backend::kafka
