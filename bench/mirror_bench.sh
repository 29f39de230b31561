#!/usr/bin/env bash
# Ferry's mirror against Apache Kafka's MirrorMaker 2 on the same two local
# brokers, in one run (see bench/README.md, "mirror_bench").
#
#   bench/mirror_bench.sh [mirror_bench options]     e.g. --records 200000
#
# On first use it installs Maven (Debian's, through apt-get) if missing and
# resolves MirrorMaker 2 (org.apache.kafka:connect-mirror, bench/mm2/pom.xml)
# with its dependencies from Maven Central into $FERRY_KAFKA_CACHE (default
# <repo>/.cache/kafka, beside the broker jars). Then it builds mirror_bench
# (and ferryd, ferry) in build/ and runs it at low priority.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${FERRY_KAFKA_CACHE:-$repo/.cache/kafka}

die() { echo "mirror_bench: $*" >&2; exit 1; }

fetch_mm2() {
  local version libs
  version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/mm2/pom.xml")
  libs="$cache/mm2-$version"
  if [[ ! -f $libs/.complete ]]; then
    if ! command -v mvn >/dev/null; then
      echo "mirror_bench: installing Maven (apt-get install maven)" >&2
      local sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
      $sudo apt-get install -y -q maven >&2 || die "could not install Maven"
    fi
    mkdir -p "$cache"
    rm -rf "$libs"
    echo "mirror_bench: resolving MirrorMaker 2 $version from Maven Central" >&2
    mvn -q -B -Dstyle.color=never -f "$here/mm2/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >"$cache/mm2-fetch.log" 2>&1 \
      || die "could not resolve MirrorMaker 2: $(tail -20 "$cache/mm2-fetch.log")"
    touch "$libs/.complete"
  fi
  echo "$libs"
}

libs=$(fetch_mm2)
"$repo/scripts/kafka/kafka" fetch >/dev/null
ninja -C "$repo/build" mirror_bench ferryd ferry >&2 || die "build failed (scripts/build first?)"
exec nice "$repo/build/bench/mirror_bench" --mm2-libs "$libs" "$@"
