"""The model registry: register versions (copying the artifact into the content-addressed store),
activate one version of a model (the others are deactivated in the same transaction), update metrics.

`updated_at` moves only when metrics or the active flag change: it is the change time the dbt snapshot
(snapshots/snap_ml__model_registry.yml) records as valid-from, so "which version was active at t" is a
join on dim_model_versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from market_warehouse.loaders.schema import TYPES
from market_warehouse.loaders.sinks import Sink, Transaction
from market_warehouse.ml.artifacts import ArtifactStore
from market_warehouse.ml.history import captured
from market_warehouse.ml.records import write_records
from market_warehouse.ml.registry_rows import deactivate_others, fill_registry_state, stored_versions
from market_warehouse.ml.schema import MODEL_REGISTRY, model_id
from market_warehouse.runs import SourceReport

R = MODEL_REGISTRY.qualified


class RegistryError(Exception):
    """Unknown model version, or an operation the registry cannot do."""


@dataclass(frozen=True)
class ModelVersion:
    model_id: str
    model_name: str
    model_version: str
    is_active: bool
    artifact_uri: str | None
    artifact_checksum: str | None


def _json_type(tx_or_sink) -> str:
    dialect = "postgres" if type(tx_or_sink).__name__.startswith("Postgres") else "duckdb"
    return TYPES["json"][dialect]


def _lock_model(tx: Transaction, model_name: str) -> list[tuple]:
    """PostgreSQL: lock the model's rows so two activations of one model run one after the other."""
    lock = " for update" if type(tx).__name__.startswith("Postgres") else ""
    return tx.execute(f"select model_version, is_active from {R} where model_name = ? "
                      f"order by model_version{lock}", [model_name])


@captured  # the registry history (snapshot) records this change: market_warehouse/ml/history.py
def activate(sink: Sink, model_name: str, model_version: str) -> ModelVersion:
    """Make `model_version` the model's only active version, atomically."""
    at = pd.Timestamp.now(tz="UTC")
    with sink.transaction() as tx:
        versions = dict(_lock_model(tx, model_name))
        if model_version not in versions:
            known = ", ".join(sorted(versions)) or "none"
            raise RegistryError(f"unknown model version {model_name}@{model_version} (registered: {known})")
        deactivate_others(tx, model_name, model_version, at)
        tx.execute(f"update {R} set is_active = true, updated_at = ? "
                   f"where model_name = ? and model_version = ? and not is_active",
                   [at.to_pydatetime(), model_name, model_version])
    return get_version(sink, model_id(model_name, model_version))


@captured  # the registry history (snapshot) records this change: market_warehouse/ml/history.py
def update_metrics(sink: Sink, mid: str, metrics: dict, merge: bool = True) -> None:
    """Replace (or, merge=True, add to) a version's metrics; updated_at moves if they changed."""
    at = pd.Timestamp.now(tz="UTC")
    with sink.transaction() as tx:
        rows = tx.execute(f"select cast(metrics as varchar) from {R} where model_id = ?", [mid])
        if not rows:
            raise RegistryError(f"unknown model version {mid}")
        current = json.loads(rows[0][0]) if rows[0][0] else {}
        new = {**current, **metrics} if merge else dict(metrics)
        if new == current:
            return
        tx.execute(f"update {R} set metrics = cast(? as {_json_type(tx)}), updated_at = ? where model_id = ?",
                   [json.dumps(new, sort_keys=True), at.to_pydatetime(), mid])


def get_version(sink: Sink, mid: str) -> ModelVersion:
    rows = sink.query(f"select model_id, model_name, model_version, is_active, artifact_uri, artifact_checksum "
                      f"from {R} where model_id = ?", [mid])
    if not rows:
        raise RegistryError(f"unknown model version {mid}")
    return ModelVersion(*rows[0])


def active_version(sink: Sink, model_name: str) -> ModelVersion | None:
    rows = sink.query(f"select model_id from {R} where model_name = ? and is_active", [model_name])
    return get_version(sink, rows[0][0]) if rows else None


@captured  # the registry history (snapshot) records this change: market_warehouse/ml/history.py
def register_model(sink: Sink, model_name: str, model_version: str, model_type: str, task: str,
                   training_date: datetime | str, metrics: dict | None = None,
                   hyperparameters: dict | None = None, feature_columns: list[str] | None = None,
                   feature_set_version: str | None = None, training_run_id: str | None = None,
                   artifact: str | Path | None = None, store: ArtifactStore | str | None = None,
                   activate: bool = False, source: str = "api") -> ModelVersion:
    """Register (or re-register) a version; copies `artifact` into the store and records its checksum.
    Invalid input raises RecordsRejected naming the reason; nothing is written then."""
    uri = checksum = None
    if artifact is not None:
        if not isinstance(store, ArtifactStore):
            store = ArtifactStore.from_config(store)
        stored = store.put(artifact)
        uri, checksum = stored.uri, stored.checksum
    row = {
        "model_name": model_name, "model_version": str(model_version), "model_type": model_type,
        "task": task, "training_date": training_date, "metrics": metrics or {},
        "hyperparameters": hyperparameters or {}, "feature_columns": list(feature_columns or []),
        "feature_set_version": feature_set_version, "training_run_id": training_run_id,
        "artifact_uri": uri, "artifact_checksum": checksum, "is_active": True if activate else None,
    }
    write_records(sink, "models", [row], source=source, strict=True, loader="ml-registry")
    return get_version(sink, model_id(model_name, str(model_version)))


def describe(versions: list[ModelVersion]) -> str:
    return "\n".join(f"{'*' if v.is_active else ' '} {v.model_id:<40} {v.artifact_checksum or ''}"
                     for v in versions)


__all__ = [
    "ModelVersion",
    "RegistryError",
    "SourceReport",
    "activate",
    "active_version",
    "deactivate_others",
    "fill_registry_state",
    "get_version",
    "register_model",
    "stored_versions",
    "update_metrics",
]
