#!/usr/bin/env bash
# The API's benchmarks, run by hand (never part of the tests):
#
#   bench/api/run.sh [BUILD_DIR]      (default build/release; configured as Release if new)
#
# Environment: BENCH_SECONDS (each wrk run, default 10), BENCH_WRK_CONNECTIONS
# (wrk's connections posting starts, default 64), BENCH_CELERY_TASKS (default
# 20000), BENCH_WS_CLIENTS (default 1000).
#
# Every figure runs against a fresh host in its own process
# (`nightshift-bench-api serve`: the built echo agent, SQLite in a temporary
# directory, the defaults of `nightshift serve`, 50 finished runs of history);
# the load (wrk, the WebSocket clients) runs in other processes. At the end it
# prints one table: each figure beside its target and the ceiling or peer it
# is compared with, measured in the same run:
#   1. echo runs started through the API (wrk) and finished, end to end,
#      beside the engine alone and beside Celery 5 + Redis (bench/peers/celery.sh);
#   2. GET /background-agents beside nginx serving a file of the same size;
#   3. 1,000 WebSocket clients: start request -> `started` on every client;
#   4. POST /background-agents/start latency at 1,000 starts/s.
# Installs wrk and nginx-light when missing (celery.sh installs its own).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="${1:-${NIGHTSHIFT_BUILD_DIR:-$root/build/release}}"
seconds="${BENCH_SECONDS:-10}"
connections="${BENCH_WRK_CONNECTIONS:-64}"
celery_tasks="${BENCH_CELERY_TASKS:-20000}"
ws_clients="${BENCH_WS_CLIENTS:-1000}"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target nightshift-bench-api nightshift-bench-engine
bench_api="$build/bin/nightshift-bench-api"
bench_engine="$build/bin/nightshift-bench-engine"

work=$(mktemp -d)
host_pid=""
nginx_pid=""
stop_host() {
  if [ -n "$host_pid" ]; then
    kill -TERM "$host_pid" 2>/dev/null || true
    wait "$host_pid" 2>/dev/null || true
    host_pid=""
  fi
}
cleanup() {
  stop_host
  [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# calc EXPRESSION: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }
now() { date +%s.%N; }

# Starts a fresh host in its own process and sets url and token.
# start_host [MODE]: `serve` (a real host, the default) or `serve-bare` (the
# bare WebSocket fan-out server, the ceiling of figure 3).
start_host() {
  rm -f "$work/host.out" "$work/host.err"
  : >"$work/host.out"
  "$bench_api" "${1:-serve}" >"$work/host.out" 2>"$work/host.err" &
  host_pid=$!
  for _ in $(seq 300); do
    [ -s "$work/host.out" ] && break
    kill -0 "$host_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! read -r url token <"$work/host.out"; then
    echo "run.sh: the bench host did not start:" >&2
    cat "$work/host.err" >&2
    exit 1
  fi
  export NIGHTSHIFT_TOKEN="$token"
}

# metric NAME: one value of the host's /metrics (NAME with its labels).
metric() {
  curl -fsS -H "Authorization: Bearer $token" "$url/metrics" |
    awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}
completed_metric='nightshift_runs_finished_total{status="completed"}'

# wrk_field OUTPUT PATTERN FIELD
requests_per_second() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
latency_p99() { awk '$1 == "99%" { print $2 }' "$1"; }
non_2xx() { awk '/Non-2xx or 3xx responses:/ { print $NF; found = 1 } END { if (!found) print 0 }' "$1"; }

echo "nightshift-bench-api: $(nproc) cores, load average at start $(loadavg)"
load_start=$(loadavg)

# ---------------------------------------------------------------------------
echo "== 1. echo runs started by wrk (-t1 -c$connections -d${seconds}s) and finished, end to end"
start_host
starts_before=$(metric nightshift_run_starts_total)
completed_before=$(metric "$completed_metric")
t0=$(now)
wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$root/bench/api/start.lua" \
  "$url/background-agents/start" >"$work/wrk-starts.txt"
t1=$(now)
starts_after=$(metric nightshift_run_starts_total)
completed_after=$(metric "$completed_metric")
window=$(calc "$t1 - $t0")
started_rate=$(calc "($starts_after - $starts_before) / $window")
finished_rate=$(calc "($completed_after - $completed_before) / $window")
start_p99=$(latency_p99 "$work/wrk-starts.txt")
refused=$(non_2xx "$work/wrk-starts.txt")
# The runs still active when wrk stopped: how long they take to finish.
drain_start=$(now)
for _ in $(seq 600); do
  [ "$(metric nightshift_run_starts_total)" = "$(metric "$completed_metric")" ] && break
  sleep 0.1
done
drain=$(calc "$(now) - $drain_start")
grep -E "Requests/sec|Non-2xx|Socket errors" "$work/wrk-starts.txt" || true
echo "started $started_rate runs/s, finished $finished_rate runs/s over ${window} s" \
  "(wrk p99 $start_p99, $refused answers not 201); the rest finished ${drain} s after wrk stopped"
stop_host

echo "== ceiling: the engine alone (nightshift-bench-engine --only echo)"
"$bench_engine" --only echo | tee "$work/engine.txt"
engine_rate=$(sed -n 's/^echo runs started, finished and persisted: \([0-9.]*\) runs\/s.*/\1/p' \
  "$work/engine.txt")

echo "== peer: Celery + Redis, $celery_tasks no-op tasks (bench/peers/celery.sh)"
"$root/bench/peers/celery.sh" "$celery_tasks" | tee "$work/celery.txt"
celery_rate=$(awk '$1 == "celery_tasks_per_second" { print $2 }' "$work/celery.txt")
ratio=$(calc "$finished_rate / $celery_rate")

# ---------------------------------------------------------------------------
echo "== 2. GET /background-agents (50 history runs), wrk -t2 -c64 -d${seconds}s"
start_host
size=$(curl -fsS -H "Authorization: Bearer $token" "$url/background-agents" | wc -c)
wrk -t2 -c64 -d"${seconds}s" -H "Authorization: Bearer $token" "$url/background-agents" \
  >"$work/wrk-list.txt"
grep -E "Requests/sec|Non-2xx" "$work/wrk-list.txt" || true
list_rate=$(requests_per_second "$work/wrk-list.txt")
if [ "$(non_2xx "$work/wrk-list.txt")" != 0 ]; then
  echo "run.sh: the host answered GET /background-agents with errors; the figure is void" >&2
  exit 1
fi
stop_host

echo "== ceiling: nginx serving a ${size}-byte static file, same wrk settings"
mkdir -p "$work/www" "$work/tmp"
head -c "$size" /dev/zero | tr '\0' 'x' >"$work/www/runs.json"
# Started as root, nginx serves as `nobody`, which must reach the file
# through the private temporary directory: without this it answers 403.
chmod 755 "$work" "$work/www"
chmod 644 "$work/www/runs.json"
nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<CONF
worker_processes $(nproc);
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  # As Debian's nginx.conf serves files: from the page cache, not copied.
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $work/tmp;
  proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp;
  scgi_temp_path $work/tmp;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
CONF
"$nginx_bin" -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
served=""
for _ in $(seq 50); do
  served=$(curl -fsS "http://127.0.0.1:$nginx_port/runs.json" 2>/dev/null | wc -c) && break
  sleep 0.1
done
# A ceiling that is not the same work is no ceiling: nginx must answer 200
# with the whole file, on every request.
if [ "$served" != "$size" ]; then
  echo "run.sh: nginx did not serve the ${size}-byte file (got '${served}' bytes); its log:" >&2
  cat "$work/nginx-error.log" >&2 || true
  exit 1
fi
wrk -t2 -c64 -d"${seconds}s" "http://127.0.0.1:$nginx_port/runs.json" >"$work/wrk-nginx.txt"
grep -E "Requests/sec|Non-2xx" "$work/wrk-nginx.txt" || true
if [ "$(non_2xx "$work/wrk-nginx.txt")" != 0 ]; then
  echo "run.sh: nginx answered with errors; the ceiling is void" >&2
  exit 1
fi
nginx_rate=$(requests_per_second "$work/wrk-nginx.txt")
kill -TERM "$nginx_pid"
wait "$nginx_pid" 2>/dev/null || true
nginx_pid=""
list_share=$(calc "100 * $list_rate / $nginx_rate")

# ---------------------------------------------------------------------------
echo "== 3. $ws_clients WebSocket clients (their own process), 50 runs started 20 ms apart"
start_host
"$bench_api" ws-fanout --url "$url" --token "$token" --clients "$ws_clients" --runs 50 |
  tee "$work/ws.txt"
ws_p99=$(awk '$1 == "ws_fanout_p99_ms" { print $2 }' "$work/ws.txt")
ws_complete=$(awk '$1 == "ws_fanout_complete" { print ($2 == 1 ? "every event read" : "EVENTS MISSING") }' "$work/ws.txt")
stop_host
echo "-- the same clients against the bare fan-out server (the ceiling)"
start_host serve-bare
"$bench_api" ws-fanout --url "$url" --token "$token" --clients "$ws_clients" --runs 50 |
  tee "$work/ws-bare.txt"
ws_bare_p99=$(awk '$1 == "ws_fanout_p99_ms" { print $2 }' "$work/ws-bare.txt")
stop_host

echo "== 4. POST /background-agents/start at 1,000/s on one connection"
start_host
"$bench_api" start-latency --url "$url" --token "$token" --rate 1000 --seconds 5 |
  tee "$work/latency.txt"
latency_p99=$(awk '$1 == "start_latency_p99_ms" { print $2 }' "$work/latency.txt")
stop_host

# ---------------------------------------------------------------------------
echo
echo "Load average: $load_start at start, $(loadavg) at the end ($(nproc) cores)."
row() { printf '%-44s %-18s %-22s %s\n' "$@"; }
row "figure" "measured" "target" "ceiling / peer (same run)"
row "API echo runs finished end to end" "$finished_rate runs/s" ">= 15000 runs/s" \
  "engine alone $engine_rate runs/s"
row "  vs Celery 5 + Redis no-op tasks" "${ratio}x" ">= 10x" "Celery $celery_rate tasks/s"
row "  started (wrk -c$connections), wrk p99" "$started_rate runs/s" "" "p99 $start_p99, $refused not 201"
row "GET /background-agents (${size} B)" "$list_rate req/s" ">= 80% of nginx" \
  "nginx $nginx_rate req/s: ${list_share}%"
row "WebSocket $ws_clients clients, p99 start->started" "$ws_p99 ms" "<= 20 ms" \
  "bare fan-out server $ws_bare_p99 ms; $ws_complete"
row "POST start p99 at 1,000/s" "$latency_p99 ms" "<= 1 ms" ""
