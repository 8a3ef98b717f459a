#!/bin/sh
# compare.sh runs the no-op floor server and a target ext_proc server, one
# after the other, under the same message sequence and load, and prints the
# target's cost above the floor.
#
#   bench/compare.sh '/path/to/extproc -config x.yaml' [loadgen flags...]
#
# The target must listen on the loadgen's -addr (default 127.0.0.1:50099),
# which the floor also uses. Give a built binary, not `go run`, so the
# measured pid is the server's. Run from the repository root. The floor runs
# with -stream-sse, so SSE responses go STREAMED there as they do in Tollgate.
set -eu
if [ $# -lt 1 ]; then
	echo "usage: $0 'target server command' [loadgen flags...]" >&2
	exit 2
fi
target=$1
shift

addr=127.0.0.1:50099
prev=
for a in "$@"; do
	case $prev in -addr) addr=$a ;; esac
	case $a in -addr=*) addr=${a#-addr=} ;; esac
	prev=$a
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/noop" ./bench/noop
go build -o "$dir/loadgen" ./bench/cmd/loadgen
"$dir/loadgen" -compare -addr "$addr" \
	-floor-cmd "$dir/noop -stream-sse -addr $addr" \
	-server-cmd "$target" "$@"
