"""The write path for ML records: check a batch, then in ONE transaction merge the valid rows (bulk:
COPY on PostgreSQL, Arrow on DuckDB), append the rejected ones to raw.quarantine with their reason,
and write the audit row to raw.loader_runs. A batch that fails rolls back whole and leaves a `failed`
audit row.

    write_records(sink, "predictions", rows)            # rows: list of dicts, or a DataFrame
    load_record_files(sink, "signals", ["signals.jsonl"])

strict=True turns any rejected row into RecordsRejected (nothing is written but the failed audit row).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from loaders.ml.files import read_records
from loaders.ml.schema import MODEL_REGISTRY
from loaders.ml.validate import KINDS, Checked, Context, Kind, check_records
from loaders.pipeline import SourceReport, new_run_id
from loaders.schema import LOADER_RUNS, QUARANTINE
from loaders.sinks import Sink, Transaction


class RecordsRejected(ValueError):
    """strict mode: some rows of the batch are invalid."""

    def __init__(self, source: str, kind: str, rejected: pd.DataFrame):
        self.rejected = rejected
        lines = [f"row {n}: {r}" for n, r in zip(rejected["row_number"][:10], rejected["reason"][:10])]
        more = f" (and {len(rejected) - 10} more)" if len(rejected) > 10 else ""
        super().__init__(f"{source}: {len(rejected)} invalid {kind} record(s){more}:\n  " + "\n  ".join(lines))


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _as_frame(rows: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows.astype(object).where(rows.notna(), None).reset_index(drop=True)
    return pd.DataFrame.from_records(list(rows)).astype(object)


def _known_models(tx: Transaction) -> frozenset[str]:
    return frozenset(r[0] for r in tx.execute(f"select model_id from {MODEL_REGISTRY.qualified}"))


def _audit(report: SourceReport, run_id: str, table: str, parameters: dict,
           started: pd.Timestamp, finished: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame([{
        "run_id": run_id, "source": report.source, "loader": report.loader, "target_table": table,
        "parameters": json.dumps(parameters, default=str, sort_keys=True),
        "rows_read": report.rows_read, "rows_loaded": report.loaded, "rows_replaced": report.replaced,
        "rows_duplicate": report.duplicate, "rows_quarantined": report.quarantined,
        "status": report.status, "error": report.error, "started_at": started, "finished_at": finished,
    }])


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


def _write_registry_rows(tx: Transaction, checked: Checked, at: pd.Timestamp) -> pd.DataFrame:
    """Registry rows: fill flag and times from what is stored, deactivate the versions the batch's
    active rows replace (before the merge, so the one-active index never sees two), return the rows."""
    from loaders.ml.registry import deactivate_others, fill_registry_state, stored_versions

    _one_active_per_model(checked)
    frame = fill_registry_state(checked.valid.drop(columns="_row_number"), stored_versions(tx), at)
    for name, version in frame.loc[frame["is_active"], ["model_name", "model_version"]].itertuples(index=False):
        deactivate_others(tx, name, version, at)
    return frame


def write_checked(sink: Sink, kind: Kind, checked: Checked, source: str, run_id: str,
                  loader: str, parameters: dict, started: pd.Timestamp, strict: bool = False) -> SourceReport:
    """Write a checked batch in one transaction: rows, quarantine, audit row."""
    table = kind.table
    report = SourceReport(source=source, loader=loader, rows_read=checked.rows_read)
    if strict and len(checked.rejected):
        raise RecordsRejected(source, kind.name, checked.rejected)
    at = _now()
    with sink.transaction() as tx:
        if table is MODEL_REGISTRY:
            frame = _write_registry_rows(tx, checked, at)
        else:
            frame = checked.valid.drop(columns="_row_number")
        counts = tx.merge(table, frame.assign(source=source, run_id=run_id, loaded_at=at))
        rejected = checked.rejected
        if len(rejected):
            q = rejected.assign(run_id=run_id, source=source, target_table=table.qualified, quarantined_at=at)
            tx.append(QUARANTINE, q[QUARANTINE.column_names])
        report.loaded, report.replaced = counts.loaded, counts.replaced
        report.duplicate = counts.duplicate + checked.duplicates_in_source
        report.quarantined = len(rejected)
        report.examples = [f"row {n}: {r}" for n, r in zip(rejected["row_number"][:5], rejected["reason"][:5])]
        finished = _now()
        report.seconds = (finished - started).total_seconds()
        tx.append(LOADER_RUNS, _audit(report, run_id, table.qualified, parameters, started, finished))
    return report


def _record_failure(sink: Sink, kind: Kind, source: str, run_id: str, loader: str, error: str,
                    parameters: dict, started: pd.Timestamp, rows_read: int = 0) -> SourceReport:
    report = SourceReport(source=source, loader=loader, status="failed", error=error, rows_read=rows_read)
    finished = _now()
    report.seconds = (finished - started).total_seconds()
    with sink.transaction() as tx:
        tx.append(LOADER_RUNS, _audit(report, run_id, kind.table.qualified, parameters, started, finished))
    return report


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"unknown record kind {name!r}; one of {', '.join(KINDS)}")
    return KINDS[name]


def write_records(sink: Sink, kind: str, rows: pd.DataFrame | Iterable[dict], source: str = "api",
                  run_id: str | None = None, strict: bool = False, loader: str | None = None,
                  now: pd.Timestamp | None = None) -> SourceReport:
    """Check and write one batch of records of `kind` (predictions, signals, agent-decisions,
    agent-episodes, training-runs, models). Raises RecordsRejected (strict) or the database error;
    either way a failed audit row is written."""
    k = _kind(kind)
    run_id = run_id or new_run_id()
    loader = loader or f"ml-{kind}"
    started = _now()
    raw = _as_frame(rows)
    row_numbers = pd.Series(range(1, len(raw) + 1))
    try:
        with sink.transaction() as tx:
            known = _known_models(tx)
        checked = check_records(k, raw, row_numbers, Context(known_models=known, now=now or _now()))
        return write_checked(sink, k, checked, source, run_id, loader, {"kind": kind}, started, strict)
    except Exception as exc:
        _record_failure(sink, k, source, run_id, loader, str(exc), {"kind": kind}, started, len(raw))
        raise


def load_record_files(sink: Sink, kind: str, paths: Sequence[str | Path], run_id: str | None = None,
                      strict: bool = False, file_format: str | None = None) -> list[SourceReport]:
    """One transaction and one audit row per file; a file that fails does not stop the others."""
    k = _kind(kind)
    run_id = run_id or new_run_id()
    reports = []
    for path in paths:
        started = _now()
        params = {"kind": kind, "file_format": file_format}
        try:
            f = read_records(path, file_format)
            with sink.transaction() as tx:
                known = _known_models(tx)
            checked = check_records(k, f.rows, f.row_numbers, Context(known_models=known), f.read_errors)
            reports.append(write_checked(sink, k, checked, str(path), run_id, f"ml-{kind}", params,
                                         started, strict))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            reports.append(_record_failure(sink, k, str(path), run_id, f"ml-{kind}", msg, params, started))
    return reports
