#!/usr/bin/env bash
# Regenerates gen/ferry/v1 from proto/ferry/v1/*.proto with Debian's protoc and
# protoc-gen-go / protoc-gen-go-grpc at the versions pinned here (installed
# with `go install` into .cache/go-bin). With --check it writes to a temporary
# folder instead and fails when the committed code differs.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
protoc_gen_go=v1.34.1       # matches google.golang.org/protobuf in go.mod
protoc_gen_go_grpc=v1.3.0   # its output needs grpc >= 1.52

bin=$repo/.cache/go-bin
mkdir -p "$bin"
# The version is part of the name, so changing a pin installs anew.
for tool in "protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@$protoc_gen_go" \
            "protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@$protoc_gen_go_grpc"; do
  set -- $tool
  if [[ ! -x $bin/$1-${2#*@} ]]; then
    GOBIN=$bin GOFLAGS=-mod=mod go install "$2"
    mv "$bin/$1" "$bin/$1-${2#*@}"
  fi
done

# module= strips the module path: files land in $out/gen/ferry/v1.
out=.
if [[ ${1:-} == --check ]]; then out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
module=ferry.dev/ferry/sdk/go
# The protos name ferry.dev/ferry/gen/...; this module places the package at gen/ferry/v1.
maps=()
for f in "$repo"/proto/ferry/v1/*.proto; do
  maps+=("M${f#"$repo"/proto/}=$module/gen/ferry/v1;ferryv1")
done
IFS=,; mapping="${maps[*]}"; unset IFS
protoc -I "$repo/proto" \
  --plugin=protoc-gen-go="$bin/protoc-gen-go-$protoc_gen_go" \
  --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc-$protoc_gen_go_grpc" \
  --go_out="$out" --go_opt="module=$module,$mapping" \
  --go-grpc_out="$out" --go-grpc_opt="module=$module,$mapping" \
  "$repo"/proto/ferry/v1/*.proto
if [[ $out != . ]]; then
  diff -r "$out/gen" gen >/dev/null || {
    echo "generate: gen/ differs from proto/: run sdk/go/generate.sh and commit" >&2; exit 1; }
fi
