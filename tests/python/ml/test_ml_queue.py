"""The retrain queue: enqueue once, claim order, complete/fail, expiring leases, and concurrent workers
(threads and processes) that must never claim the same request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from market_warehouse.ml import queue
from market_warehouse.ml.db import open_ml_sink
from market_warehouse.ml.queue import QueueError, RetrainRequest

REPO = Path(__file__).resolve().parents[3]


def _requests(n: int) -> list[RetrainRequest]:
    return [RetrainRequest(f"model_{i:03d}", "drift", priority=1 + i % 5) for i in range(n)]


def test_enqueue_once_claim_order_complete_fail(ml_any):
    done = queue.enqueue(ml_any, [RetrainRequest("a", "accuracy drift", 3), RetrainRequest("b", "psi", 1),
                                  RetrainRequest("a", "again, more urgent", 2)])
    assert [m for m, rid in done if rid] == ["a", "b"]
    assert queue.enqueue(ml_any, [RetrainRequest("a", "still drifting", 1)]) == [("a", None)]
    assert ml_any.query("select model_name, reason, priority from raw.ml_retrain_queue order by model_name") == [
        ("a", "again, more urgent", 2), ("b", "psi", 1)]

    first = queue.claim(ml_any, "w1")
    second = queue.claim(ml_any, "w2")
    assert (first.model_name, second.model_name) == ("b", "a")  # priority 1 before 2
    assert queue.claim(ml_any, "w3") is None
    with pytest.raises(QueueError, match="held by w1, not by w2"):
        queue.complete(ml_any, first.request_id, "w2")
    queue.complete(ml_any, first.request_id, "w1")
    queue.fail(ml_any, second.request_id, "w2", "out of memory")
    assert ml_any.query("select model_name, status, error from raw.ml_retrain_queue order by model_name") == [
        ("a", "failed", "out of memory"), ("b", "completed", None)]
    # Neither is open any more: the models can be enqueued again.
    assert all(rid for _, rid in queue.enqueue(ml_any, [RetrainRequest("a", "x"), RetrainRequest("b", "y")]))
    with pytest.raises(QueueError, match="priority 9 not in 1..5"):
        queue.enqueue(ml_any, [RetrainRequest("c", "x", 9)])


def test_a_crashed_workers_claim_expires(ml_any):
    queue.enqueue(ml_any, [RetrainRequest("a", "drift")])
    dead = queue.claim(ml_any, "crashed", lease_seconds=1)
    assert queue.claim(ml_any, "w2") is None  # the lease still holds
    time.sleep(1.2)
    assert queue.release_expired(ml_any) == 1
    assert ml_any.query("select status, error from raw.ml_retrain_queue") == [("pending", "claim by crashed expired")]
    # An expired claim is also claimable directly (no release needed).
    again = queue.claim(ml_any, "w2", lease_seconds=1)
    assert again.request_id == dead.request_id and again.attempts == 2
    time.sleep(1.2)
    third = queue.claim(ml_any, "w3")
    assert third.request_id == dead.request_id and third.attempts == 3
    with pytest.raises(QueueError, match="held by w3"):
        queue.complete(ml_any, dead.request_id, "w2")  # the late worker cannot finish it
    queue.complete(ml_any, dead.request_id, "w3")


def _claim_all_in_threads(make_sink, workers: int) -> list[str]:
    claimed: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)
    lock = threading.Lock()

    def work(name: str) -> None:
        try:
            with make_sink() as sink:
                barrier.wait()
                while (c := queue.claim(sink, name)) is not None:
                    with lock:
                        claimed.append(c.request_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return claimed


def test_concurrent_workers_never_claim_the_same_request_postgres(timescale_target):
    """FOR UPDATE SKIP LOCKED: 8 workers on their own connections drain 200 requests at once."""
    with open_ml_sink(timescale_target) as sink:
        queue.enqueue(sink, _requests(200))
    claimed = _claim_all_in_threads(lambda: open_ml_sink(timescale_target), workers=8)
    dupes = [rid for rid, n in Counter(claimed).items() if n > 1]
    assert not dupes and len(claimed) == 200
    with open_ml_sink(timescale_target) as sink:
        rows = sink.query("select count(*), count(distinct claimed_by), max(attempts) from raw.ml_retrain_queue "
                          "where status = 'processing'")
    assert rows[0][0] == 200 and rows[0][2] == 1
    assert rows[0][1] > 1  # the work really was shared


def test_concurrent_workers_never_claim_the_same_request_duckdb_threads(duckdb_target):
    """DuckDB: threads with their own connections to one file, serialised by the writer lock."""
    with open_ml_sink(duckdb_target) as sink:
        queue.enqueue(sink, _requests(60))
    claimed = _claim_all_in_threads(lambda: open_ml_sink(duckdb_target), workers=4)
    assert len(claimed) == 60 and len(set(claimed)) == 60


def test_concurrent_cli_workers_duckdb_processes(duckdb_target):
    """DuckDB admits one process per file: `mwh retrain claim` processes take turns on the lock."""
    with open_ml_sink(duckdb_target) as sink:
        queue.enqueue(sink, _requests(12))
    env = {**os.environ, "MWH_DUCKDB_PATH": duckdb_target.path}
    script = ("import sys, json, io, contextlib\n"
              "from market_warehouse.cli import main\n"
              "ids = []\n"
              "for _ in range(6):\n"
              "    buf = io.StringIO()\n"
              "    with contextlib.redirect_stdout(buf):\n"
              "        rc = main(['retrain', 'claim', '--worker', sys.argv[1]])\n"
              "    if rc == 0: ids.append(json.loads(buf.getvalue())['request_id'])\n"
              "print(' '.join(ids))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{i}"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    claimed = [rid for out, _ in outputs for rid in out.split()]
    assert len(claimed) == 12 and len(set(claimed)) == 12
