"""Registry history capture: every state change of the model registry reaches the SCD2 snapshot
(snapshots/snap_ml__model_registry.yml), whatever the build cadence.

The snapshot records one row per registry state it sees, so two changes between two `dbt snapshot`
runs used to collapse into the last one (activating v2 before a build had snapshotted v1 lost v1's
active period). The registry's state-changing functions are wrapped with `@captured`:

- before the change, if the registry holds a state the snapshot has not recorded (changes made while
  capture was off, or by a direct write), that state is snapshotted first;
- after the change, the snapshot runs again, so the new state is recorded with its change time.

A capture runs `dbt build --select stg_ml__model_registry snap_ml__model_registry` (the staging view
is rebuilt too, as it reads an empty relation until the raw table exists) through market_warehouse/dbt.py, on the
profile target whose database the sink writes to. The dbt manifest is parsed once per process.
`MWH_REGISTRY_HISTORY=off` turns capture off (the next `mwh build` then snapshots the latest state only).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

import pandas as pd

from market_warehouse.config import ConfigError, Target, load_target
from market_warehouse.dbt import run_dbt

log = logging.getLogger(__name__)

SNAPSHOT = "snapshots.snap_ml__model_registry"
REGISTRY = "raw.ml_model_registry"
_SELECT = ["--select", "stg_ml__model_registry", "snap_ml__model_registry", "--indirect-selection", "empty"]
_manifest = {}
# dbt is not thread-safe (and run_dbt changes the working directory): one capture at a time in a
# process; across processes on PostgreSQL, an advisory lock keeps two snapshots from racing.
_lock = threading.Lock()
_ADVISORY_KEY = 0x6D77685F  # "mwh_"

F = TypeVar("F", bound=Callable)


class HistoryError(RuntimeError):
    """The registry changed but its history could not be captured."""


def enabled() -> bool:
    return os.environ.get("MWH_REGISTRY_HISTORY", "on").strip().lower() not in ("off", "0", "false", "no")


def _same_database(sink, target: Target) -> bool:
    if target.type == "duckdb":
        path = getattr(sink, "path", None)
        return path is not None and os.path.realpath(path) == os.path.realpath(target.path or "")
    conn = getattr(sink, "conn", None)
    if conn is None or not hasattr(conn, "info"):
        return False
    info = conn.info
    return info.dbname == target.dbname and str(info.port) == str(target.port)


def target_of(sink) -> Target:
    """The profile target whose database `sink` writes to (the default target first)."""
    candidates = [None, "duckdb", "timescale", "postgres"]
    for name in candidates:
        try:
            target = load_target(name)
        except ConfigError:
            continue
        if _same_database(sink, target):
            return target
    raise HistoryError("registry history: the warehouse is not one of the profile's targets "
                       "(MWH_TARGET / profiles.yml); cannot run the registry snapshot")


def snapshot(target: Target) -> None:
    """Run the registry snapshot now (and rebuild the staging view it reads)."""

    key = (target.name, target.path, target.dbname)
    if key not in _manifest:
        parsed = run_dbt(["parse"], target, quiet=True)
        if not parsed.success:
            raise HistoryError(f"registry history: dbt parse failed: {parsed.exception}")
        _manifest[key] = parsed.result
    res = run_dbt(["build", *_SELECT], target, quiet=True, manifest=_manifest[key])
    if not res.success:
        failed = [f"{r.node.name}: {r.message}" for r in (res.result or []) if str(r.status) != "success"]
        raise HistoryError(f"registry history: snapshot failed: {'; '.join(failed) or res.exception}")


def uncaptured(sink) -> bool:
    """Whether the registry holds a state the snapshot has not recorded."""
    try:
        snap = sink.query(f"select model_id, cast(updated_at_utc as varchar) from {SNAPSHOT} "
                          "where dbt_valid_to is null")
    except Exception:  # noqa: BLE001 - never snapshotted
        snap = []
    reg = sink.query(f"select model_id, cast(updated_at at time zone 'UTC' as timestamp) from {REGISTRY}")
    stored = {m: str(t) for m, t in snap}
    return any(m not in stored or pd.Timestamp(stored[m]) != pd.Timestamp(t) for m, t in reg)


@contextmanager
def _exclusive(target: Target):
    with _lock:
        if target.type == "duckdb":  # one writer per file anyway
            yield
            return
        import psycopg  # deferred: a DuckDB-only run need not load psycopg

        with psycopg.connect(target.conninfo(), autocommit=True) as conn:
            conn.execute("select pg_advisory_lock(%s)", [_ADVISORY_KEY])
            try:
                yield
            finally:
                conn.execute("select pg_advisory_unlock(%s)", [_ADVISORY_KEY])


def capture_if_needed(sink, target: Target | None = None) -> bool:
    """Snapshot the registry if it holds a state the history has not recorded; True if it ran."""
    target = target or target_of(sink)
    with _exclusive(target):
        if not uncaptured(sink):
            return False
        snapshot(target)
        return True


def captured(func: F) -> F:
    """Decorator of registry functions `f(sink, ...)` that change the registry (see module docstring)."""

    @functools.wraps(func)
    def wrapper(sink, *args, **kwargs):
        if not enabled():
            return func(sink, *args, **kwargs)
        target = target_of(sink)
        capture_if_needed(sink, target)  # a state never captured (changes made while capture was off)
        result = func(sink, *args, **kwargs)
        capture_if_needed(sink, target)
        return result

    return wrapper  # type: ignore[return-value]


__all__ = ["HistoryError", "capture_if_needed", "captured", "enabled", "snapshot", "target_of", "uncaptured"]
