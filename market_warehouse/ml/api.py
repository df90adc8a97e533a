"""The Python API ML code writes through: one import, one call per batch of records.

    from market_warehouse.ml import api

    with api.connect() as wh:                       # the profile's target (MWH_TARGET, default duckdb)
        api.register_model(wh, "aapl_direction", "3", "lightgbm", "classification", "2024-05-01",
                           metrics={"accuracy": 0.56, "accuracy_std": 0.02}, artifact="model.txt",
                           activate=True)
        api.record_predictions(wh, rows)            # list of dicts or a DataFrame; bulk
        api.record_signals(wh, signals)
        claim = api.claim_retrain(wh, "worker-1")   # None when the queue is empty

Every record call validates the batch, writes the valid rows in one transaction with the rejected ones
in raw.quarantine (with the reason) and an audit row in raw.loader_runs, and returns the report
(loaded / replaced / duplicate / quarantined). strict=True raises RecordsRejected instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from market_warehouse.config import Target
from market_warehouse.loaders.sinks import Sink
from market_warehouse.ml.db import open_ml_sink
from market_warehouse.ml.queue import (
    Claim,
    RetrainRequest,
    claim,
    complete,
    enqueue,
    fail,
    release_expired,
)
from market_warehouse.ml.records import RecordsRejected, write_records
from market_warehouse.ml.registry import (
    ModelVersion,
    activate,
    active_version,
    register_model,
    update_metrics,
)
from market_warehouse.runs import SourceReport

Rows = pd.DataFrame | Iterable[dict]


def connect(target: Target | str | None = None) -> Sink:
    """Open the warehouse (creating the ML tables if needed); use as a context manager."""
    return open_ml_sink(target)


def record_predictions(sink: Sink, rows: Rows, source: str = "api", strict: bool = False) -> SourceReport:
    return write_records(sink, "predictions", rows, source=source, strict=strict)


def record_signals(sink: Sink, rows: Rows, source: str = "api", strict: bool = False) -> SourceReport:
    return write_records(sink, "signals", rows, source=source, strict=strict)


def record_training_runs(sink: Sink, rows: Rows, source: str = "api", strict: bool = True) -> SourceReport:
    return write_records(sink, "training-runs", rows, source=source, strict=strict)


def record_agent_decisions(sink: Sink, rows: Rows, source: str = "api", strict: bool = False) -> SourceReport:
    return write_records(sink, "agent-decisions", rows, source=source, strict=strict)


def record_agent_episodes(sink: Sink, rows: Rows, source: str = "api", strict: bool = False) -> SourceReport:
    return write_records(sink, "agent-episodes", rows, source=source, strict=strict)


def request_retrain(sink: Sink, model_name: str, reason: str, priority: int = 3,
                    requested_by: str | None = None) -> str | None:
    """Enqueue one model; None when a request for it is already pending or processing."""
    return enqueue(sink, [RetrainRequest(model_name, reason, priority, requested_by=requested_by)])[0][1]


def claim_retrain(sink: Sink, worker: str, lease_seconds: int = 15 * 60) -> Claim | None:
    return claim(sink, worker, lease_seconds)


__all__ = [
    "Claim", "ModelVersion", "RecordsRejected", "SourceReport", "activate", "active_version", "claim_retrain",
    "complete", "connect", "fail", "record_agent_decisions", "record_agent_episodes", "record_predictions",
    "record_signals", "record_training_runs", "register_model", "release_expired", "request_retrain",
    "update_metrics",
]
