#!/usr/bin/env bash
# Runs Tollgate end to end on its embedded defaults: fake OpenAI and
# Anthropic providers, the extproc server, and the Envoy stand-in
# (internal/envoysim, a test tool: production runs real Envoy with
# envoy/envoy.yaml). No Envoy, no provider keys, no Redis.
#
#   scripts/demo.sh          start, send two requests, keep serving until Ctrl-C
#   DEMO_ONCE=1 scripts/demo.sh   start, send the requests, stop
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$bin"
}
trap cleanup EXIT INT TERM

echo "building..."
go build -o "$bin/" ./cmd/extproc ./internal/fakeprovider/cmd/fakeprovider ./internal/envoysim/cmd/envoysim

"$bin/fakeprovider" -openai 127.0.0.1:18081 -anthropic 127.0.0.1:18082 2>"$bin/fakeprovider.log" & pids+=($!)
"$bin/extproc" 2>"$bin/extproc.log" & pids+=($!)
"$bin/envoysim" -c examples/local/envoy.yaml 2>"$bin/envoysim.log" & pids+=($!)

ready() { curl -s -o /dev/null "$1"; }
for _ in $(seq 100); do
	if ready http://127.0.0.1:9080/readyz && ready http://127.0.0.1:10000/ && ready http://127.0.0.1:18081/; then break; fi
	sleep 0.1
done

set -x
curl -sS http://127.0.0.1:10000/v1/chat/completions \
	-H 'Authorization: Bearer sk-tollgate-demo' -H 'Content-Type: application/json' \
	-d '{"model":"claude-sonnet","messages":[{"role":"user","content":"Hello from the OpenAI format"}]}'
echo
curl -sSN http://127.0.0.1:10000/v1/chat/completions \
	-H 'Authorization: Bearer sk-tollgate-demo' -H 'Content-Type: application/json' \
	-d '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Stream this"}]}'
set +x

if [ -n "${DEMO_ONCE:-}" ]; then exit 0; fi
echo
echo "Tollgate is listening on http://127.0.0.1:10000 (key sk-tollgate-demo). Ctrl-C stops it."
echo "Logs: $bin/*.log"
wait
