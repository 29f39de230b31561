// Linked with ferryd's allocator (jemalloc unless the build turned it off).
#include "backend/kafka/fetch_arena.h"

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/kafka/client_factory.h"
#include "common/jemalloc_control.h"

namespace ferry::backend::kafka {
namespace {

// Large enough that jemalloc serves it from the arena, not a thread cache.
constexpr size_t kFetchSized = 1 << 20;

unsigned ThreadArena() {
  unsigned arena = 0;
  size_t size = sizeof(arena);
  EXPECT_EQ(mallctl("thread.arena", &arena, &size, nullptr, 0), 0);
  return arena;
}

unsigned ArenaOf(const void* pointer) {
  unsigned arena = 0;
  size_t size = sizeof(arena);
  EXPECT_EQ(mallctl("arenas.lookup", &arena, &size, &pointer, sizeof(pointer)), 0);
  return arena;
}

ssize_t DirtyDecayOf(unsigned arena) {
  const std::string name = "arena." + std::to_string(arena) + ".dirty_decay_ms";
  ssize_t decay = 0;
  size_t size = sizeof(decay);
  EXPECT_EQ(mallctl(name.c_str(), &decay, &size, nullptr, 0), 0);
  return decay;
}

TEST(FetchArena, NoneWithoutJemalloc) {
  if (mallctl != nullptr) GTEST_SKIP() << "built with jemalloc";
  EXPECT_FALSE(FetchArenaIndex().has_value());
  EXPECT_FALSE(BindToFetchArena());
}

TEST(FetchArena, BoundThreadAllocatesFromAnArenaThatKeepsItsPages) {
  if (mallctl == nullptr) GTEST_SKIP() << "built without jemalloc";
  ASSERT_TRUE(FetchArenaIndex().has_value());
  const unsigned fetch_arena = *FetchArenaIndex();
  EXPECT_EQ(DirtyDecayOf(fetch_arena), -1);
  std::thread([fetch_arena] {
    ASSERT_TRUE(BindToFetchArena());
    EXPECT_EQ(ThreadArena(), fetch_arena);
    std::unique_ptr<char[]> buffer(new char[kFetchSized]);
    EXPECT_EQ(ArenaOf(buffer.get()), fetch_arena);
  }).join();
  std::thread([fetch_arena] {
    EXPECT_NE(ThreadArena(), fetch_arena);
    std::unique_ptr<char[]> buffer(new char[kFetchSized]);
    const unsigned arena = ArenaOf(buffer.get());
    EXPECT_NE(arena, fetch_arena);
    EXPECT_EQ(DirtyDecayOf(arena), 1000) << "cmake/jemalloc_conf.c's decay";
  }).join();
}

// What librdkafka's threads of a consumer report at start: the thread type
// and the arena the fetch-arena interceptor (added before) left them in.
struct StartedThreads {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<rd_kafka_thread_type_t, unsigned>> threads;
};

rd_kafka_resp_err_t RecordThread(rd_kafka_t*, rd_kafka_thread_type_t type, const char*,
                                 void* opaque) {
  auto* started = static_cast<StartedThreads*>(opaque);
  const unsigned arena = ThreadArena();
  std::lock_guard lock(started->mutex);
  started->threads.emplace_back(type, arena);
  started->changed.notify_all();
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_resp_err_t AddRecorder(rd_kafka_t* handle, const rd_kafka_conf_t*, void* opaque,
                                char*, size_t) {
  return rd_kafka_interceptor_add_on_thread_start(handle, "test-recorder", &RecordThread,
                                                  opaque);
}

TEST(FetchArena, BindsAConsumersBrokerThreadsOnly) {
  if (mallctl == nullptr) GTEST_SKIP() << "built without jemalloc";
  ASSERT_TRUE(FetchArenaIndex().has_value());
  const unsigned fetch_arena = *FetchArenaIndex();
  // Nothing listens on port 1: the broker thread starts and fails to connect.
  auto conf = BuildConf({{"bootstrap.servers", "127.0.0.1:1"}, {"log_level", "0"}}, "");
  ASSERT_TRUE(conf.ok()) << conf.status();
  StartedThreads started;
  UseFetchArena(conf->get());
  ASSERT_EQ(rd_kafka_conf_interceptor_add_on_new(conf->get(), "test-recorder",
                                                 &AddRecorder, &started),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  LibrdkafkaClientFactory factory;
  auto handle = factory.Create(RD_KAFKA_CONSUMER, *std::move(conf));
  ASSERT_TRUE(handle.ok()) << handle.status();
  std::unique_lock lock(started.mutex);
  // The main thread and at least the bootstrap broker's and the internal
  // broker's threads.
  ASSERT_TRUE(started.changed.wait_for(lock, std::chrono::seconds(10), [&] {
    size_t brokers = 0;
    bool main = false;
    for (const auto& [type, arena] : started.threads) {
      brokers += type == RD_KAFKA_THREAD_BROKER;
      main = main || type == RD_KAFKA_THREAD_MAIN;
    }
    return main && brokers >= 2;
  }));
  for (const auto& [type, arena] : started.threads) {
    if (type == RD_KAFKA_THREAD_BROKER) {
      EXPECT_EQ(arena, fetch_arena);
    } else {
      EXPECT_NE(arena, fetch_arena) << "thread type " << type;
    }
  }
}

}  // namespace
}  // namespace ferry::backend::kafka
