/* jemalloc's settings for the binary it is linked into. Debian builds
 * jemalloc without a symbol prefix, so it reads this global at its first
 * allocation; MALLOC_CONF in the environment still overrides it.
 *
 * jemalloc keeps freed ("dirty") pages for 10 s by default, which raised
 * ferryd's peak RSS at 16 KiB messages by ~70 MiB over glibc's
 * (bench/RESULTS.md). Returning them after 1 s, and skipping the "muzzy"
 * (MADV_FREE) stage whose pages still count in RSS, keeps the allocator's
 * speed and bounds its footprint to about one second of churn. */
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
