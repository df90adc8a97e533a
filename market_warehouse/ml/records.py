"""The write path for ML records: check a batch, then in ONE transaction merge the valid rows (bulk:
COPY on PostgreSQL, Arrow on DuckDB), append the rejected ones to raw.quarantine with their reason,
and write the audit row to raw.loader_runs. A batch that fails rolls back whole and leaves a `failed`
audit row.

    write_records(sink, "predictions", rows)            # rows: list of dicts, or a DataFrame
    load_record_files(sink, "signals", ["signals.jsonl"])

strict=True turns any rejected row into RecordsRejected (nothing is written but the failed audit row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from market_warehouse import runs
from market_warehouse.loaders.schema import LOADER_RUNS, QUARANTINE
from market_warehouse.loaders.sinks import Sink, Transaction
from market_warehouse.ml import history
from market_warehouse.ml.files import read_records
from market_warehouse.ml.registry_rows import registry_rows
from market_warehouse.ml.schema import MODEL_REGISTRY
from market_warehouse.ml.validate import KINDS, Checked, Context, Kind, check_header, check_records
from market_warehouse.runs import SourceReport


class RecordsRejected(ValueError):
    """strict mode: some rows of the batch are invalid."""

    def __init__(self, source: str, kind: str, rejected: pd.DataFrame):
        self.rejected = rejected
        lines = [f"row {n}: {r}" for n, r in zip(rejected["row_number"][:10], rejected["reason"][:10])]
        more = f" (and {len(rejected) - 10} more)" if len(rejected) > 10 else ""
        super().__init__(f"{source}: {len(rejected)} invalid {kind} record(s){more}:\n  " + "\n  ".join(lines))


def _as_frame(rows: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows.astype(object).where(rows.notna(), None).reset_index(drop=True)
    return pd.DataFrame.from_records(list(rows)).astype(object)


def _known_models(tx: Transaction) -> frozenset[str]:
    return frozenset(r[0] for r in tx.execute(f"select model_id from {MODEL_REGISTRY.qualified}"))


def write_checked(sink: Sink, kind: Kind, checked: Checked, source: str, run_id: str,
                  loader: str, parameters: dict, started: pd.Timestamp, strict: bool = False) -> SourceReport:
    """Write a checked batch in one transaction: rows, quarantine, audit row."""
    table = kind.table
    report = SourceReport(source=source, loader=loader, rows_read=checked.rows_read)
    if strict and len(checked.rejected):
        raise RecordsRejected(source, kind.name, checked.rejected)
    at = runs.utcnow()
    with sink.transaction() as tx:
        if table is MODEL_REGISTRY:
            frame = registry_rows(tx, checked, at)
        else:
            frame = checked.valid.drop(columns="_row_number")
        counts = tx.merge(table, runs.with_audit(frame, source, run_id, at))
        rejected = checked.rejected
        if len(rejected):
            tx.append(QUARANTINE, runs.quarantine_frame(rejected, run_id, source, table, at))
        report.loaded, report.replaced = counts.loaded, counts.replaced
        report.duplicate = counts.duplicate + checked.duplicates_in_source
        report.quarantined = len(rejected)
        report.examples = runs.examples(rejected, "row")
        finished = runs.utcnow()
        report.seconds = (finished - started).total_seconds()
        tx.append(LOADER_RUNS, runs.audit_row(report, run_id, table, parameters, started, finished))
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
    run_id = run_id or runs.new_run_id()
    loader = loader or f"ml-{kind}"
    started = runs.utcnow()
    raw = _as_frame(rows)
    row_numbers = pd.Series(range(1, len(raw) + 1))
    try:
        with sink.transaction() as tx:
            known = _known_models(tx)
        checked = check_records(k, raw, row_numbers, Context(known_models=known, now=now or runs.utcnow()))
        return write_checked(sink, k, checked, source, run_id, loader, {"kind": kind}, started, strict)
    except Exception as exc:
        runs.record_failure(sink, run_id, source, loader, str(exc), started, {"kind": kind}, k.table, len(raw))
        raise


def load_record_files(sink: Sink, kind: str, paths: Sequence[str | Path], run_id: str | None = None,
                      strict: bool = False, file_format: str | None = None) -> list[SourceReport]:
    """One transaction and one audit row per file; a file that fails does not stop the others."""
    k = _kind(kind)
    run_id = run_id or runs.new_run_id()
    reports = []
    for path in paths:
        started = runs.utcnow()
        params = {"kind": kind, "file_format": file_format}
        try:
            f = read_records(path, file_format)
            check_header(k, f.rows, str(path))
            with sink.transaction() as tx:
                known = _known_models(tx)
            checked = check_records(k, f.rows, f.row_numbers, Context(known_models=known), f.read_errors)
            reports.append(write_checked(sink, k, checked, str(path), run_id, f"ml-{kind}", params,
                                         started, strict))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            error = runs.describe_error(exc, str(path))
            reports.append(runs.record_failure(sink, run_id, str(path), f"ml-{kind}", error, started, params,
                                               k.table))
        if k.table is MODEL_REGISTRY and history.enabled() and reports[-1].loaded + reports[-1].replaced:
            # Each registry file is a state change: the history records it before the next file can
            # overwrite it, as for register/activate (market_warehouse/ml/history.py).
            history.capture_if_needed(sink)
    return reports
