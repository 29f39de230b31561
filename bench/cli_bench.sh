#!/usr/bin/env bash
# The ferry CLI beside kcat on one local broker (issue 18): `ferry produce` of
# a file of lines against `kcat -P` (acks=all, idempotence on), and
# `ferry consume --count N` of that backlog to /dev/null against `kcat -C`.
# Hand-run, not in CI. Needs scripts/setup (kcat) and scripts/build.
#
#   bench/cli_bench.sh                          200,000 lines of 1 KiB, 3 runs
#   bench/cli_bench.sh --lines 50000 --runs 1   a quick look
#
# Each run writes the same file to two fresh topics (--partitions, default 6),
# one per tool, alternating which tool goes first, then reads each backlog
# back with its own tool. Prints seconds, the CPU seconds (user + sys) of the
# tool, ferryd and the broker, and kcat's time over ferry's (target >= 0.8).
set -euo pipefail
cd "$(dirname "$0")/.."

lines=200000 size=1024 runs=3 partitions=6 build=build
while [[ $# -gt 0 ]]; do
  case $1 in
    --lines) lines=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "cli_bench: unknown argument $1 (--lines, --size, --runs, --partitions, --build)" >&2
       exit 2 ;;
  esac
done
ferry=$build/src/cli/ferry
ferryd=$build/src/server/ferryd
for tool in "$ferry" "$ferryd"; do
  [[ -x $tool ]] || { echo "cli_bench: $tool missing: run scripts/build" >&2; exit 2; }
done
command -v kcat >/dev/null || { echo "cli_bench: kcat missing: run scripts/setup" >&2; exit 2; }

work=$(mktemp -d /tmp/cli_bench.XXXXXX)
name=clibench-$$
ferryd_pid=
cleanup() {
  [[ -n $ferryd_pid ]] && kill "$ferryd_pid" 2>/dev/null && wait "$ferryd_pid" 2>/dev/null
  scripts/kafka/kafka wipe "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free port whose successor is free too (the broker's controller).
free_port_pair() {
  python3 - <<'EOF'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1)); print(port); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
EOF
}
# utime + stime of a process in seconds.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

echo "cli_bench: $lines lines of $size bytes" >&2
python3 - "$lines" "$size" >"$work/input" <<'EOF'
import random, string, sys
lines, size = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(18)
alphabet = (string.ascii_letters + string.digits).encode()
block = bytes(rng.choice(alphabet) for _ in range(size + 4096))
out = sys.stdout.buffer
for i in range(lines):
    start = (i * 7919) % 4096
    out.write(b"%08d" % i + block[start:start + size - 8] + b"\n")
EOF

port=$(free_port_pair)
bootstrap=127.0.0.1:$port
echo "cli_bench: starting Kafka $name on $bootstrap" >&2
scripts/kafka/kafka start "$name" "$port" >/dev/null
broker_pid=$(<"${FERRY_KAFKA_STATE:-/tmp/ferry-kafka}/$name/broker.pid")
grpc=127.0.0.1:$(free_port_pair)
http_port=$(free_port_pair)
"$ferryd" --set clusters.main.type=kafka --set "clusters.main.bootstrap=$bootstrap" \
  --set "listen.grpc=$grpc" --set "listen.http=127.0.0.1:$http_port" \
  --set node.id=cli-bench >"$work/ferryd.log" 2>&1 &
ferryd_pid=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && break
  kill -0 "$ferryd_pid" 2>/dev/null || { cat "$work/ferryd.log" >&2; exit 1; }
  sleep 0.2
done

# Runs "$@" with stdin from $in and stdout to $out; prints "wall tool_cpu
# ferryd_cpu broker_cpu".
measure() {
  local in=$1 out=$2; shift 2
  local before_ferryd before_broker start end times
  before_ferryd=$(cpu_of "$ferryd_pid")
  before_broker=$(cpu_of "$broker_pid")
  start=$(date +%s.%N)
  times=$( { TIMEFORMAT='%U %S'; time "$@" <"$in" >"$out" 2>"$work/stderr"; } 2>&1 ) || {
    echo "cli_bench: failed: $*" >&2; cat "$work/stderr" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v t="$times" -v fb="$before_ferryd" \
      -v fa="$(cpu_of "$ferryd_pid")" -v bb="$before_broker" -v ba="$(cpu_of "$broker_pid")" \
    'BEGIN { split(t, c, " "); printf "%.2f %.2f %.2f %.2f\n", e - s, c[1] + c[2], fa - fb, ba - bb }'
}

kcat_produce() {
  measure "$work/input" /dev/null kcat -P -b "$bootstrap" -t "$1" \
    -X acks=all -X enable.idempotence=true
}
ferry_produce() {
  measure "$work/input" /dev/null "$ferry" --server "$grpc" produce --topic "$1"
}
kcat_consume() {
  measure /dev/null /dev/null timeout 300 kcat -C -b "$bootstrap" -t "$1" \
    -o beginning -c "$lines" -e -q
}
ferry_consume() {
  measure /dev/null /dev/null timeout 300 "$ferry" --server "$grpc" consume \
    --group "g-$1" --topic "$1" --from earliest --count "$lines"
}

declare -a rows
for run in $(seq "$runs"); do
  for tool in kcat ferry; do
    "$ferry" --server "$grpc" topics create "$tool-$run" --partitions "$partitions" >/dev/null
  done
  order=(kcat ferry)
  (( run % 2 == 0 )) && order=(ferry kcat)
  declare -A produce=() consume=()
  for tool in "${order[@]}"; do
    echo "cli_bench: run $run: $tool produce" >&2
    produce[$tool]=$("${tool}_produce" "$tool-$run")
  done
  for tool in "${order[@]}"; do
    echo "cli_bench: run $run: $tool consume" >&2
    consume[$tool]=$("${tool}_consume" "$tool-$run")
  done
  rows+=("$run ${produce[kcat]} ${produce[ferry]} ${consume[kcat]} ${consume[ferry]}")
done

echo
echo "$lines lines of $size B, $partitions partitions, one local broker, ferryd in front;"
echo "seconds (CPU s of the tool / ferryd / broker); ratio = kcat's time / ferry's (target >= 0.8)"
echo
echo "| run | kcat -P s | ferry produce s | ratio | kcat -C s | ferry consume s | ratio |"
echo "|---|--:|--:|--:|--:|--:|--:|"
for row in "${rows[@]}"; do
  read -r run kp kpc _ kpb fp fpc fpd fpb kc kcc _ kcb fc fcc fcd fcb <<<"$row"
  printf "| %s | %s (%s / - / %s) | %s (%s / %s / %s) | %s | %s (%s / - / %s) | %s (%s / %s / %s) | %s |\n" \
    "$run" "$kp" "$kpc" "$kpb" "$fp" "$fpc" "$fpd" "$fpb" "$(awk -v a="$kp" -v b="$fp" 'BEGIN { printf "%.2f", a / b }')" \
    "$kc" "$kcc" "$kcb" "$fc" "$fcc" "$fcd" "$fcb" "$(awk -v a="$kc" -v b="$fc" 'BEGIN { printf "%.2f", a / b }')"
done
