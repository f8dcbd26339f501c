#!/usr/bin/env bash
# The peer for Nightshift's end-to-end figure: Celery 5 + Redis doing the same
# no-op work on the same machine. Run by hand (bench/api/run.sh runs it too).
#
#   bench/peers/celery.sh [TASKS [PRODUCERS]]     (default 20000 tasks, 4 producers)
#
# Installs python3-celery, python3-redis and redis-server from Debian when
# missing; starts a private redis-server on a free loopback port (its own
# temporary directory, no persistence) and a Celery worker (prefork,
# concurrency = the number of cores) for a no-op task; measures TASKS no-op
# tasks from the first enqueue to the last result; stops both. Its last line
# is `celery_tasks_per_second <float>`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tasks="${1:-20000}"
producers="${2:-4}"
python=/usr/bin/python3 # Debian's, which has the packages below

missing=()
dpkg -s python3-celery >/dev/null 2>&1 || missing+=(python3-celery)
dpkg -s python3-redis >/dev/null 2>&1 || missing+=(python3-redis)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
redis_pid=""
worker_pid=""
stop_all() {
  if [ -n "$worker_pid" ]; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_all EXIT

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --save "" --appendonly no \
  --daemonize no --logfile "$work/redis.log" &
redis_pid=$!
for _ in $(seq 100); do
  [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
if [ "$(redis-cli -p "$port" ping 2>/dev/null)" != PONG ]; then
  echo "celery.sh: redis-server did not answer on 127.0.0.1:$port; its log:" >&2
  cat "$work/redis.log" >&2
  exit 1
fi

export CELERY_BENCH_REDIS_URL="redis://127.0.0.1:$port/0"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
cores=$(nproc)
(cd "$work" && exec "$python" -m celery -A celery_noop worker --pool=prefork \
  --concurrency="$cores" --loglevel=warning --without-gossip --without-mingle \
  --without-heartbeat >"$work/worker.log" 2>&1) &
worker_pid=$!

echo "Celery worker: prefork, concurrency $cores; Redis on 127.0.0.1:$port (no persistence)"
if ! "$python" "$here/celery_noop.py" --tasks "$tasks" --producers "$producers"; then
  echo "celery.sh: the measurement failed; the worker's log:" >&2
  tail -n 30 "$work/worker.log" >&2
  exit 1
fi
