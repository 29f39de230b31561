/* jemalloc's settings for the binary it is linked into. Debian builds
 * jemalloc without a symbol prefix, so it reads this global at its first
 * allocation; MALLOC_CONF in the environment still overrides it.
 *
 * Freed ("dirty") pages stay with the allocator for reuse and are not
 * returned to the system (dirty_decay_ms:-1). librdkafka receives each fetch
 * response into a fresh buffer of up to a few MiB and frees it once the last
 * of its records is acked, on another thread. With any decay (1 s, and
 * jemalloc's default 10 s alike: decay purges whatever stays free while the
 * churn is steady) those pages were returned and the next fetch faulted them
 * in again, zeroed: 13-16 % of ferryd's CPU while serving a backlog
 * (bench/RESULTS.md, branch dcons3). RSS then stays at its peak instead of
 * shrinking after one; the peak itself is what the configured buffers allow.
 * No "muzzy" (MADV_FREE) stage: its pages still count in RSS. */
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:0";
