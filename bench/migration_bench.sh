#!/usr/bin/env bash
# Times each stage of `ferry migrate` on a topic holding 1 M records (1 KiB,
# keyed, 8 partitions) between two local Kafka brokers, with live traffic
# (see bench/migration_bench.cc and bench/RESULTS.md, "Migration").
#
#   bench/migration_bench.sh [migration_bench options]
#       e.g. --rollback-from producers, --records 200000
#
# Builds migration_bench (and ferryd, ferry) in build/ and runs it at low
# priority: the machine is shared.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/kafka/kafka" fetch >/dev/null
ninja -C "$repo/build" migration_bench ferryd ferry >&2
exec nice "$repo/build/bench/migration_bench" "$@"
