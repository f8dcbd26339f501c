#!/usr/bin/env bash
# Runs the API benchmarks (by hand; never part of the tests):
#   1. GET /background-agents with 50 history runs, by wrk (target >= 30,000 req/s),
#      beside nginx serving a static file of the same size (the machine's ceiling);
#   2. POST /background-agents/start p99 latency at 1,000 starts/s (target <= 1 ms);
#   3. 1,000 WebSocket clients receiving every run event, p99 delivery (target <= 20 ms).
# Builds a release tree first. Installs wrk and nginx-light when missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="${NIGHTSHIFT_BUILD_DIR:-$here/build/release}"
duration="${BENCH_SECONDS:-10}"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target nightshift_api_load
load="$build/bin/nightshift_api_load"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== 1. GET /background-agents (50 history runs), wrk -t2 -c64 -d${duration}s"
mkfifo "$work/stdin"
"$load" serve <"$work/stdin" >"$work/serve.out" &
exec 3>"$work/stdin"
until [ -s "$work/serve.out" ]; do sleep 0.1; done
read -r port token <"$work/serve.out"
size=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/background-agents" | wc -c)
wrk -t2 -c64 -d"${duration}s" -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/background-agents" | grep -E "Requests/sec|Latency"
exec 3>&-
wait

echo "== ceiling: nginx serving a ${size}-byte static file, same wrk settings"
mkdir -p "$work/www"
head -c "$size" /dev/zero | tr '\0' 'x' >"$work/www/runs.json"
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/tmp;
  server { listen 127.0.0.1:18089; root $work/www; }
}
CONF
"$nginx_bin" -c "$work/nginx.conf" -p "$work"
sleep 0.5
wrk -t2 -c64 -d"${duration}s" "http://127.0.0.1:18089/runs.json" | grep -E "Requests/sec|Latency"
kill "$(cat "$work/nginx.pid")"

echo "== 2. POST /background-agents/start at 1,000/s"
"$load" start-latency --rate 1000 --seconds 5

echo "== 3. 1,000 WebSocket clients"
"$load" ws-fanout --clients 1000 --runs 50
