"""The retrain queue (raw.ml_retrain_queue): enqueue once, claim safely, complete or fail, leases expire.

Lifecycle: pending -> (claim) processing -> completed | failed. A claim holds a lease; a processing
request whose lease has passed is claimable again (and `release_expired` puts it back to pending), so a
crashed worker never strands a request. Workers take priority 1 first, then the oldest.

Several workers at once:
- PostgreSQL: the claim is one UPDATE whose target row is picked with ``FOR UPDATE SKIP LOCKED``:
  a row another worker is claiming is skipped, never claimed twice. A partial unique index keeps at
  most one pending/processing request per model, so concurrent enqueues cannot duplicate either.
- DuckDB: one writer per database file. Claims and enqueues take an exclusive lock (flock on a file
  in the temp directory named after the database's path) around their transaction; processes and
  threads alike queue up on it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from market_warehouse.loaders.sinks import Sink
from market_warehouse.ml.schema import RETRAIN_QUEUE

Q = RETRAIN_QUEUE.qualified
DEFAULT_LEASE_SECONDS = 15 * 60
STATUSES = ("pending", "processing", "completed", "failed")


class QueueError(Exception):
    """A request that does not exist, or is not held by the worker that tries to finish it."""


@dataclass(frozen=True)
class RetrainRequest:
    model_name: str
    reason: str
    priority: int = 3
    model_id: str | None = None
    requested_by: str | None = None


@dataclass(frozen=True)
class Claim:
    request_id: str
    model_name: str
    model_id: str | None
    reason: str
    priority: int
    attempts: int
    lease_expires_at: pd.Timestamp


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


_held = threading.local()


def _lock_path(path: str) -> str:
    """The lock file of a DuckDB database: in the temp directory, named after the database's absolute
    path, so every process on the machine finds the same file and the project directory stays clean."""
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"mwh-queue-{digest}.lock")


@contextmanager
def duckdb_file_lock(path: str) -> Iterator[None]:
    """An exclusive flock on the database's lock file; re-entrant within a thread. Other threads and
    processes wait for it (flock locks belong to the open file, so two opens in one process exclude
    each other)."""
    path = os.path.abspath(path)
    held: set[str] = getattr(_held, "paths", None) or set()
    _held.paths = held
    if path in held:
        yield
        return
    with open(_lock_path(path), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def writer_lock(sink: Sink) -> Iterator[None]:
    """DuckDB: the single-writer lock (see duckdb_file_lock). PostgreSQL: nothing (row locks do it)."""
    path = getattr(sink, "path", None)
    if sink.dialect != "duckdb" or not path or path == ":memory:":
        yield
        return
    with duckdb_file_lock(path):
        yield


def _check(requests: Sequence[RetrainRequest]) -> None:
    for n, r in enumerate(requests, start=1):
        if not r.model_name or not str(r.model_name).strip():
            raise QueueError(f"request {n}: missing model_name")
        if not r.reason or not str(r.reason).strip():
            raise QueueError(f"request {n} ({r.model_name}): missing reason")
        if not isinstance(r.priority, int) or not 1 <= r.priority <= 5:
            raise QueueError(f"request {n} ({r.model_name}): priority {r.priority!r} not in 1..5")


def enqueue(sink: Sink, requests: Sequence[RetrainRequest]) -> list[tuple[str, str | None]]:
    """Put requests on the queue, at most one open (pending or processing) per model: a model already
    waiting is skipped. Returns (model_name, request_id or None if skipped) per request."""
    _check(requests)
    if not requests:
        return []
    at = _now()
    frame = pd.DataFrame([{
        "request_id": str(uuid.uuid4()), "model_name": r.model_name, "model_id": r.model_id,
        "reason": r.reason, "priority": r.priority, "status": "pending", "requested_by": r.requested_by,
        "inserted_at": at, "started_at": None, "completed_at": None, "claimed_by": None,
        "lease_expires_at": None, "attempts": 0, "error": None,
    } for r in requests])
    # Within the batch, the most urgent request per model wins.
    frame = frame.sort_values(["priority"], kind="stable").drop_duplicates("model_name").reset_index(drop=True)
    for col in ("started_at", "completed_at", "lease_expires_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    cols = ", ".join(RETRAIN_QUEUE.column_names)
    with writer_lock(sink), sink.transaction() as tx:
        stage = tx.stage(RETRAIN_QUEUE, frame)
        conflict = (" on conflict (model_name) where status in ('pending', 'processing') do nothing"
                    if sink.dialect == "postgres" else "")
        inserted = tx.execute(
            f"insert into {Q} ({cols}) select {cols} from {stage} as s "
            f"where not exists (select 1 from {Q} as q where q.model_name = s.model_name "
            f"and q.status in ('pending', 'processing')){conflict} returning request_id, model_name")
        tx.execute(f"drop table {stage}")
    ids = {m: r for r, m in inserted}
    return [(r.model_name, ids.pop(r.model_name, None)) for r in requests]


def claim(sink: Sink, worker: str, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> Claim | None:
    """Claim the most urgent claimable request for `worker`, or None if there is none."""
    at = _now()
    lease = at + pd.Timedelta(seconds=lease_seconds)
    claimable = "(status = 'pending' or (status = 'processing' and lease_expires_at < ?))"
    order = "order by priority, inserted_at, request_id"
    returning = "returning request_id, model_name, model_id, reason, priority, attempts, lease_expires_at"
    update = (f"update {Q} set status = 'processing', claimed_by = ?, started_at = ?, "
              f"lease_expires_at = ?, attempts = attempts + 1, completed_at = null ")
    params = [worker, at.to_pydatetime(), lease.to_pydatetime()]
    if sink.dialect == "postgres":
        with sink.transaction() as tx:
            rows = tx.execute(
                f"{update} where request_id = (select request_id from {Q} where {claimable} {order} "
                f"limit 1 for update skip locked) {returning}", [*params, at.to_pydatetime()])
    else:
        with writer_lock(sink), sink.transaction() as tx:
            pick = tx.execute(f"select request_id from {Q} where {claimable} {order} limit 1",
                              [at.to_pydatetime()])
            rows = tx.execute(f"{update} where request_id = ? {returning}",
                              [*params, pick[0][0]]) if pick else []
    if not rows:
        return None
    r = rows[0]
    return Claim(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), pd.Timestamp(r[6]))


def _finish(sink: Sink, request_id: str, worker: str, status: str, error: str | None) -> None:
    at = _now()
    with writer_lock(sink), sink.transaction() as tx:
        done = tx.execute(
            f"update {Q} set status = ?, completed_at = ?, error = ?, lease_expires_at = null "
            f"where request_id = ? and status = 'processing' and claimed_by = ? returning request_id",
            [status, at.to_pydatetime(), error, request_id, worker])
        if not done:
            held = tx.execute(f"select status, claimed_by from {Q} where request_id = ?", [request_id])
            if not held:
                raise QueueError(f"no retrain request {request_id}")
            raise QueueError(f"request {request_id} is {held[0][0]} and held by {held[0][1]}, not by "
                             f"{worker}: its lease may have expired and another worker claimed it")


def complete(sink: Sink, request_id: str, worker: str) -> None:
    _finish(sink, request_id, worker, "completed", None)


def fail(sink: Sink, request_id: str, worker: str, error: str, retry: bool = False) -> None:
    """Mark a claimed request failed (retry=True: back to pending, the error kept)."""
    _finish(sink, request_id, worker, "pending" if retry else "failed", error)


def release_expired(sink: Sink) -> int:
    """Return every processing request whose lease has passed to pending; how many."""
    at = _now()
    with writer_lock(sink), sink.transaction() as tx:
        rows = tx.execute(
            f"update {Q} set status = 'pending', lease_expires_at = null, "
            f"error = 'claim by ' || coalesce(claimed_by, 'an unknown worker') || ' expired' "
            f"where status = 'processing' and lease_expires_at < ? returning request_id", [at.to_pydatetime()])
    return len(rows)


def candidates(sink: Sink, schema: str = "marts") -> list[RetrainRequest]:
    """The retrain candidates dbt computed (marts.fct_model_retrain_candidates)."""
    try:
        rows = sink.query(f"select model_name, model_id, reason, priority from {schema}.fct_model_retrain_candidates "
                          f"order by priority, model_name")
    except Exception as exc:
        raise QueueError(f"cannot read {schema}.fct_model_retrain_candidates ({exc}); run `mwh build` first") from exc
    return [RetrainRequest(model_name=m, model_id=i, reason=r, priority=int(p), requested_by="drift")
            for m, i, r, p in rows]


def list_requests(sink: Sink, status: str | None = None) -> list[tuple]:
    where = " where status = ?" if status else ""
    return sink.query(f"select request_id, model_name, priority, status, claimed_by, attempts, inserted_at, "
                      f"reason from {Q}{where} order by inserted_at, request_id", [status] if status else None)
