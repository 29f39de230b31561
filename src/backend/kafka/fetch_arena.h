#pragma once

#include <librdkafka/rdkafka.h>

#include <optional>

namespace ferry::backend::kafka {

// librdkafka's broker threads receive each fetch response into a new buffer
// of up to ~1 MiB, freed when its last record is acked. With jemalloc's 1 s
// decay (cmake/jemalloc_conf.c) those pages go back to the kernel and the
// next fetch faults them in again, zeroed: 13-16 % of ferryd's CPU while
// serving a backlog (bench/RESULTS.md, dcons3). Broker threads bound here
// allocate from one jemalloc arena that keeps its freed pages, so the
// retained memory is bounded by what the fetches used at their peak while
// the rest of the process keeps the 1 s decay. Once fetching has stopped
// the arena gives its pages back (arena_purger.h).

// Makes the broker threads of the handle created from `conf` allocate from
// the fetch arena. Does nothing where jemalloc is not the allocator.
void UseFetchArena(rd_kafka_conf_t* conf);

// Binds the calling thread to the fetch arena; false (and no binding) where
// there is none or jemalloc refused.
bool BindToFetchArena();

// The fetch arena's jemalloc index, created at the first call; none where
// jemalloc is not the allocator or refused to set the arena up.
std::optional<unsigned> FetchArenaIndex();

}  // namespace ferry::backend::kafka
