"""A loader run, once for every kind of load (market files, yfinance, ML records, future tick loads):
its id, the per-source report, the audit row in raw.loader_runs, the record of a failed source, and
the quarantine frame of rejected rows. Also what a run can be asked afterwards: `list_runs` and
`undo_run` (`mwh runs list`, `mwh runs undo RUN_ID`).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd

from market_warehouse.loaders.schema import LOADER_RUNS, QUARANTINE, RAW_SCHEMA, Table, history_of
from market_warehouse.loaders.sinks import Sink


@dataclass
class SourceReport:
    """What one source of a run did (one audit row)."""

    source: str
    loader: str
    status: str = "success"
    rows_read: int = 0
    loaded: int = 0
    replaced: int = 0
    duplicate: int = 0
    quarantined: int = 0
    error: str | None = None
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)  # first quarantined rows, "line N: reason"
    notes: list[str] = field(default_factory=list)  # e.g. keys this file shares with another one

    def line(self) -> str:
        if self.status == "failed":
            return f"FAILED  {self.error}"
        if self.status == "partial":
            return (f"PARTIAL {self.source}: loaded {self.loaded}, replaced {self.replaced}, "
                    f"quarantined {self.quarantined}; then: {self.error}")
        return (f"ok      {self.source}: read {self.rows_read}, loaded {self.loaded}, "
                f"replaced {self.replaced}, duplicate {self.duplicate}, "
                f"quarantined {self.quarantined} ({self.seconds:.2f}s)")


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def utcnow() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def with_audit(frame: pd.DataFrame, source: str, run_id: str, at: pd.Timestamp) -> pd.DataFrame:
    """The frame with the audit columns every loaded row carries (source, run_id, loaded_at)."""
    return frame.assign(source=source, run_id=run_id, loaded_at=at)


def examples(rejected: pd.DataFrame, label: str = "line", n: int = 5) -> list[str]:
    """The first rejected rows as 'line N: reason'."""
    return [f"{label} {k}: {r}" for k, r in zip(rejected["row_number"][:n], rejected["reason"][:n])]


def quarantine_frame(rejected: pd.DataFrame, run_id: str, source: str, table: Table,
                     at: pd.Timestamp) -> pd.DataFrame:
    """Rejected rows (row_number, record, reason) as raw.quarantine rows."""
    q = rejected.assign(run_id=run_id, source=source, target_table=table.qualified, quarantined_at=at)
    return q[QUARANTINE.column_names]


def audit_row(report: SourceReport, run_id: str, table: Table | str, parameters: dict,
              started: pd.Timestamp, finished: pd.Timestamp) -> pd.DataFrame:
    """The source's raw.loader_runs row."""
    return pd.DataFrame([audit_record(report, run_id, table, parameters, started, finished)])


def audit_record(report: SourceReport, run_id: str, table: Table | str, parameters: dict,
                 started: pd.Timestamp, finished: pd.Timestamp) -> dict:
    """`audit_row` as a dict (many files' rows make one frame: a frame per file cost more than its file)."""
    return {
        "run_id": run_id, "source": report.source, "loader": report.loader,
        "target_table": table if isinstance(table, str) else table.qualified,
        "parameters": json.dumps(parameters, default=str, sort_keys=True),
        "rows_read": report.rows_read, "rows_loaded": report.loaded, "rows_replaced": report.replaced,
        "rows_duplicate": report.duplicate, "rows_quarantined": report.quarantined,
        "status": report.status, "error": report.error, "started_at": started, "finished_at": finished,
    }


def record_failure(sink: Sink, run_id: str, source: str, loader: str, error: str, started: pd.Timestamp,
                   parameters: dict, table: Table | str, rows_read: int = 0) -> SourceReport:
    """A source that wrote nothing: its `failed` audit row, in a transaction of its own. If even that
    cannot be written (the connection is gone), the report says so instead of raising."""
    report = SourceReport(source=source, loader=loader, status="failed", error=error, rows_read=rows_read)
    finished = utcnow()
    report.seconds = (finished - started).total_seconds()
    try:
        with sink.transaction() as tx:
            tx.append(LOADER_RUNS, audit_row(report, run_id, table, parameters, started, finished))
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        report.error = f"{error} (and the failure could not be recorded: {exc})"
    return report


def describe_error(exc: BaseException, source: str) -> str:
    """The error as one line that names the source."""
    msg = str(exc) or exc.__class__.__name__
    return msg if source in msg else f"{source}: {msg}"


# ---- what a run did, afterwards ------------------------------------------------------------------

UNDONE = "undone"


@dataclass
class RunSummary:
    run_id: str
    started_at: pd.Timestamp
    loaders: str
    sources: int
    failed: int
    loaded: int
    replaced: int
    quarantined: int
    status: str  # success, failed, partial (some sources failed), undone

    def line(self) -> str:
        return (f"{self.run_id}  {self.started_at:%Y-%m-%d %H:%M:%S}  {self.status:<8} {self.loaders:<22} "
                f"{self.sources:>4} sources  {self.loaded:>10,} new  {self.replaced:>8,} replaced  "
                f"{self.quarantined:>7,} quarantined")


def list_runs(sink: Sink, limit: int = 20) -> list[RunSummary]:
    """The most recent runs, newest first, one line each (summed over their sources)."""
    rows = sink.query(
        f"select run_id, min(started_at), string_agg(distinct loader, ','), count(*), "
        f"sum(case when status = 'failed' then 1 else 0 end), "
        f"sum(case when status = '{UNDONE}' then 1 else 0 end), "
        f"sum(rows_loaded), sum(rows_replaced), sum(rows_quarantined) "
        f"from {LOADER_RUNS.qualified} group by run_id order by min(started_at) desc, run_id limit ?",
        [limit])
    out = []
    for run_id, started, loaders, n, failed, undone, loaded, replaced, quarantined in rows:
        status = (UNDONE if undone else "failed" if failed == n else "partial" if failed else "success")
        out.append(RunSummary(run_id, pd.Timestamp(started), ",".join(sorted(loaders.split(","))), int(n),
                              int(failed), int(loaded), int(replaced), int(quarantined), status))
    return out


@dataclass
class UndoReport:
    run_id: str
    removed: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    restored: dict[str, int] = field(default_factory=dict)  # table -> replaced rows put back
    not_restored: list[str] = field(default_factory=list)  # what could not be put back, and why

    def lines(self) -> list[str]:
        out = [f"undone {self.run_id}:"]
        out += [f"  removed  {n:>10,} rows from {t}" for t, n in self.removed.items() if n]
        out += [f"  restored {n:>10,} replaced rows of {t}" for t, n in self.restored.items() if n]
        out += [f"  not restored: {why}" for why in self.not_restored]
        return out


class RunError(Exception):
    """Unknown run, or one already undone."""


def _existing_tables(sink: Sink, tables: tuple[Table, ...]) -> list[Table]:
    names = {r[0] for r in sink.query(
        "select table_name from information_schema.tables where table_schema = ?", [RAW_SCHEMA])}
    return [t for t in tables if t.name in names]


def undo_run(sink: Sink, run_id: str, tables: tuple[Table, ...]) -> UndoReport:
    """Remove every row `run_id` wrote to `tables` (and its quarantined rows), put back the rows it
    replaced where their history was kept (`history_of`) and no later run has since written the key,
    and mark its audit rows `undone`. One transaction: all of it or nothing."""
    statuses = [r[0] for r in sink.query(
        f"select distinct status from {LOADER_RUNS.qualified} where run_id = ?", [run_id])]
    if not statuses:
        raise RunError(f"no run {run_id!r} in {LOADER_RUNS.qualified} (see `mwh runs list`)")
    if UNDONE in statuses:
        raise RunError(f"run {run_id} is already undone")
    report = UndoReport(run_id)
    data = [t for t in _existing_tables(sink, tables) if t.name not in (LOADER_RUNS.name, QUARANTINE.name)
            and "run_id" in t.column_names and not t.name.startswith("replaced_")]
    at = utcnow()
    with sink.transaction() as tx:
        for table in data:
            removed = tx.execute(f"select count(*) from {table.qualified} where run_id = ?", [run_id])[0][0]
            tx.execute(f"delete from {table.qualified} where run_id = ?", [run_id])
            report.removed[table.qualified] = int(removed)
            history = history_of(table)
            replaced = int(tx.execute(
                f"select coalesce(sum(rows_replaced), 0) from {LOADER_RUNS.qualified} "
                f"where run_id = ? and target_table = ?", [run_id, table.qualified])[0][0])
            if history is None:
                if replaced:
                    report.not_restored.append(
                        f"{replaced:,} rows of {table.qualified} it replaced (no history of replaced rows "
                        f"is kept for that table)")
                continue
            key = " and ".join(f"t.{k} = h.{k}" for k in table.key)
            cols = ", ".join(table.column_names)
            hcols = ", ".join(f"h.{c}" for c in table.column_names)
            kept = f"from {history.qualified} as h where h.replaced_by_run_id = ?"
            blocked = int(tx.execute(
                f"select count(*) {kept} and exists (select 1 from {table.qualified} as t where {key})",
                [run_id])[0][0])
            restored = int(tx.execute(
                f"select count(*) {kept} and not exists (select 1 from {table.qualified} as t where {key})",
                [run_id])[0][0])
            tx.execute(f"insert into {table.qualified} ({cols}) select {hcols} {kept} "
                       f"and not exists (select 1 from {table.qualified} as t where {key})", [run_id])
            tx.execute(f"delete from {history.qualified} where replaced_by_run_id = ? or run_id = ?",
                       [run_id, run_id])
            report.restored[table.qualified] = restored
            if blocked:
                report.not_restored.append(
                    f"{blocked:,} rows of {table.qualified} it replaced: a later run has since written "
                    f"those keys (undo that run first)")
            if replaced > restored + blocked:
                report.not_restored.append(
                    f"{replaced - restored - blocked:,} rows of {table.qualified} it replaced have no kept "
                    f"history: rows the run itself wrote first (a file of the same command; nothing to "
                    f"restore), or rows replaced before the history was kept")
        n = tx.execute(f"select count(*) from {QUARANTINE.qualified} where run_id = ?", [run_id])[0][0]
        tx.execute(f"delete from {QUARANTINE.qualified} where run_id = ?", [run_id])
        report.removed[QUARANTINE.qualified] = int(n)
        tx.execute(f"update {LOADER_RUNS.qualified} set status = '{UNDONE}', "
                   f"error = coalesce(error || '; ', '') || ? where run_id = ?",
                   [f"undone at {at:%Y-%m-%d %H:%M:%S} UTC", run_id])
    return report
