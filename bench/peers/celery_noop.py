"""Celery + Redis doing the same no-op work as Nightshift's echo runs.

Used by celery.sh (which starts a private redis-server and a worker): the
worker imports this module for its task (`celery -A celery_noop worker`), and
running it as a script measures no-op tasks from the first enqueue to the last
result and prints

    celery_tasks_per_second <float>

as its last line, for bench/api/run.sh to read.

The broker and the result backend are the Redis at $CELERY_BENCH_REDIS_URL.
"""

import argparse
import multiprocessing
import os
import time

import celery
from celery import Celery
from celery.result import ResultSet

REDIS_URL = os.environ.get("CELERY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("celery_noop", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # The worker's own logs stay quiet, so that they do not cost it time.
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
)


@app.task(name="noop")
def noop(index):
    """Does nothing, like the echo agent with no task: returns its argument."""
    return index


def wait_for_worker(deadline_seconds):
    """Waits until a worker answers a ping; raises when none does in time."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return True
    raise SystemExit(
        f"celery_noop: no Celery worker answered within {deadline_seconds:.0f} s "
        f"on {REDIS_URL}; see the worker's log for why it did not start"
    )


def send_and_collect(indices):
    """Enqueues one no-op task per index and waits for every result."""
    results = ResultSet([noop.delay(i) for i in indices])
    values = results.join_native(timeout=600, propagate=True)
    if sorted(values) != sorted(indices):
        raise RuntimeError(f"{len(indices)} tasks sent, but their results do not match")
    return len(values)


def run_tasks(count, producers):
    """Enqueues `count` no-op tasks from `producers` processes at once (each
    sends its share and waits for its results, as wrk's connections do for
    Nightshift) and returns the seconds from the first enqueue to the last
    result."""
    shares = [list(range(p, count, producers)) for p in range(producers)]
    if producers == 1:
        start = time.perf_counter()
        send_and_collect(shares[0])
        return time.perf_counter() - start
    # Fresh interpreters, so that no producer inherits another's connections.
    with multiprocessing.get_context("spawn").Pool(producers) as pool:
        pool.map(wait_for_worker, [60] * producers)  # every producer connected first
        start = time.perf_counter()
        done = sum(pool.map(send_and_collect, shares, chunksize=1))
        elapsed = time.perf_counter() - start
    if done != count:
        raise SystemExit(f"celery_noop: {count} tasks sent, but {done} results came back")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000, help="tasks to time")
    parser.add_argument("--warmup", type=int, default=500, help="untimed tasks first")
    parser.add_argument("--producers", type=int, default=4,
                        help="processes enqueueing at once (each waits for its own results)")
    args = parser.parse_args()

    wait_for_worker(60)
    if args.warmup > 0:
        run_tasks(args.warmup, 1)
    elapsed = run_tasks(args.tasks, args.producers)
    rate = args.tasks / elapsed
    print(f"Celery {celery.__version__} + Redis: {args.tasks} no-op tasks from "
          f"{args.producers} producers, first enqueue to last result in {elapsed:.2f} s: "
          f"{rate:.0f} tasks/s")
    print(f"celery_tasks_per_second {rate:.1f}")


if __name__ == "__main__":
    main()
