"""The registry's rows as every write path stores them (the API, `mwh ml register`, `mwh ml load models`):
what is stored, the flag and times a new row keeps or moves, and the deactivation of a model's other
versions. Below both records.py and registry.py, so neither imports the other back."""

from __future__ import annotations

import json

import pandas as pd

from market_warehouse.loaders.sinks import Transaction
from market_warehouse.ml.schema import MODEL_REGISTRY
from market_warehouse.ml.validate import Checked

R = MODEL_REGISTRY.qualified


def stored_versions(tx: Transaction) -> dict[str, dict]:
    """model_id -> what the registry holds (created_at, updated_at, is_active, metrics as a dict)."""
    rows = tx.execute(f"select model_id, created_at, updated_at, is_active, cast(metrics as varchar) from {R}")
    return {m: {"created_at": c, "updated_at": u, "is_active": a, "metrics": json.loads(x) if x else None}
            for m, c, u, a, x in rows}


def deactivate_others(tx: Transaction, model_name: str, model_version: str, at: pd.Timestamp) -> None:
    """Deactivate every other version of the model (first, so the one-active index never sees two)."""
    tx.execute(f"update {R} set is_active = false, updated_at = ? "
               f"where model_name = ? and model_version <> ? and is_active", [at.to_pydatetime(), model_name,
                                                                               model_version])


def fill_registry_state(raw: pd.DataFrame, stored: dict[str, dict], at: pd.Timestamp) -> pd.DataFrame:
    """Registry rows as written: a version keeps its first created_at; is_active left unset keeps the
    stored flag (False for a new version); updated_at moves only if metrics or the flag changed."""
    out = raw.copy()
    created, updated, active = [], [], []
    for mid, flag, metrics in zip(out["model_id"], out["is_active"], out["metrics"]):
        prev = stored.get(mid)
        new_flag = bool(flag) if pd.notna(flag) else bool(prev and prev["is_active"])
        active.append(new_flag)
        if prev is None:
            created.append(at)
            updated.append(at)
            continue
        created.append(pd.Timestamp(prev["created_at"]))
        new_metrics = json.loads(metrics) if isinstance(metrics, str) else None
        changed = new_flag != bool(prev["is_active"]) or new_metrics != prev["metrics"]
        updated.append(at if changed else pd.Timestamp(prev["updated_at"]))
    out["is_active"] = pd.array(active, dtype="boolean")
    out["created_at"] = pd.to_datetime(created, utc=True)
    out["updated_at"] = pd.to_datetime(updated, utc=True)
    return out


def _one_active_per_model(checked: Checked) -> None:
    """A batch naming two active versions of one model cannot be honoured: quarantine those rows."""
    frame = checked.valid
    active = frame[frame["is_active"].fillna(False).astype(bool)]
    twice = active[active.duplicated("model_name", keep=False)]
    if twice.empty:
        return
    extra = pd.DataFrame({
        "row_number": twice["_row_number"].astype("int64").values,
        "record": twice.drop(columns="_row_number").to_json(
            orient="records", lines=True, date_format="iso").splitlines(),
        "reason": [f"more than one active version of model {n} in the batch" for n in twice["model_name"]],
    })
    checked.valid = frame.drop(index=twice.index).reset_index(drop=True)
    checked.rejected = pd.concat([checked.rejected, extra], ignore_index=True)


def registry_rows(tx: Transaction, checked: Checked, at: pd.Timestamp) -> pd.DataFrame:
    """Registry rows: fill flag and times from what is stored, deactivate the versions the batch's
    active rows replace (before the merge, so the one-active index never sees two), return the rows."""
    _one_active_per_model(checked)
    frame = fill_registry_state(checked.valid.drop(columns="_row_number"), stored_versions(tx), at)
    for name, version in frame.loc[frame["is_active"], ["model_name", "model_version"]].itertuples(index=False):
        deactivate_others(tx, name, version, at)
    return frame
