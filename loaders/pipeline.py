"""One source at a time: parse -> validate -> write, in one transaction, with its audit row.

A source that fails (unreadable, wrong format, database error) rolls back whole, is recorded in
raw.loader_runs as failed with the error, and does not stop the other sources of the same command.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from loaders.schema import BARS, CORPORATE_ACTIONS, LOADER_RUNS, QUARANTINE
from loaders.sinks import Sink
from loaders.sources import alphavantage, binance_klines, generic, yfinance_format
from loaders.sources.common import ParsedBatch
from loaders.validate import Validated, validate

log = logging.getLogger(__name__)

FORMATS: dict[str, Callable[..., ParsedBatch]] = {
    "alphavantage": alphavantage.parse,
    "yfinance": yfinance_format.parse_file,
    "binance-klines": binance_klines.parse,
    "generic": generic.parse,
}


@dataclass
class SourceReport:
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


def _utcnow() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _with_audit(frame: pd.DataFrame, source: str, run_id: str, at: pd.Timestamp) -> pd.DataFrame:
    frame = frame.copy()
    frame["source"] = source
    frame["run_id"] = run_id
    frame["loaded_at"] = at
    return frame


def _audit_row(report: SourceReport, run_id: str, target: str, parameters: dict,
               started: pd.Timestamp, finished: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame([{
        "run_id": run_id, "source": report.source, "loader": report.loader, "target_table": target,
        "parameters": json.dumps(parameters, default=str, sort_keys=True),
        "rows_read": report.rows_read, "rows_loaded": report.loaded, "rows_replaced": report.replaced,
        "rows_duplicate": report.duplicate, "rows_quarantined": report.quarantined,
        "status": report.status, "error": report.error, "started_at": started, "finished_at": finished,
    }])


@dataclass
class PreparedBatch:
    """A source ready to write: validated, audit columns set, and the rows already encoded for the
    sink's bulk path (so that this CPU work can run while the previous source is being written)."""

    batch: ParsedBatch
    checked: Validated
    at: pd.Timestamp
    bars: pd.DataFrame
    actions: pd.DataFrame
    quarantine: pd.DataFrame
    encoded_bars: object = None


def prepare_batch(sink: Sink, batch: ParsedBatch, run_id: str,
                  checked: Validated | None = None) -> PreparedBatch:
    """Everything before the transaction: pure CPU work, no database round trip."""
    v = checked or validate(batch)
    at = _utcnow()
    bars = _with_audit(v.bars, batch.source, run_id, at)[BARS.column_names]
    quarantine = v.rejected.assign(run_id=run_id, source=batch.source, target_table=BARS.qualified,
                                   quarantined_at=at)
    return PreparedBatch(
        batch=batch, checked=v, at=at, bars=bars,
        actions=_with_audit(v.actions, batch.source, run_id, at)[CORPORATE_ACTIONS.column_names],
        quarantine=quarantine[QUARANTINE.column_names],
        encoded_bars=sink.encode(BARS, bars),
    )


def write_batch(sink: Sink, batch: ParsedBatch | PreparedBatch, run_id: str,
                checked: Validated | None = None, started: pd.Timestamp | None = None,
                partial_error: str | None = None) -> SourceReport:
    """Validate and write one parsed source; all of it commits or none of it.
    partial_error: the source could only be read in part (e.g. a later fetch failed); what was
    read is written and the audit row says `partial` with the error."""
    started = started or _utcnow()
    prep = batch if isinstance(batch, PreparedBatch) else prepare_batch(sink, batch, run_id, checked)
    batch, v = prep.batch, prep.checked
    report = SourceReport(source=batch.source, loader=batch.loader, rows_read=v.rows_read,
                          quarantined=len(v.rejected))
    if partial_error:
        report.status, report.error = "partial", partial_error
    report.examples = [f"line {n}: {r}" for n, r in zip(v.rejected["row_number"][:5], v.rejected["reason"][:5])]
    with sink.transaction() as tx:
        log.info("writing %s: %d bars, %d actions, %d quarantined (transaction open)",
                 batch.source, len(prep.bars), len(prep.actions), len(prep.quarantine))
        counts = tx.merge(BARS, prep.bars, encoded=prep.encoded_bars)
        tx.merge(CORPORATE_ACTIONS, prep.actions)
        if len(prep.quarantine):
            tx.append(QUARANTINE, prep.quarantine)
        report.loaded, report.replaced = counts.loaded, counts.replaced
        report.duplicate = counts.duplicate + v.duplicates_in_source
        finished = _utcnow()
        report.seconds = (finished - started).total_seconds()
        tx.append(LOADER_RUNS, _audit_row(report, run_id, BARS.qualified, batch.parameters,
                                          started, finished))
    return report


def record_failure(sink: Sink, run_id: str, source: str, loader: str, error: str,
                   started: pd.Timestamp, parameters: dict) -> SourceReport:
    report = SourceReport(source=source, loader=loader, status="failed", error=error)
    finished = _utcnow()
    report.seconds = (finished - started).total_seconds()
    with sink.transaction() as tx:
        tx.append(LOADER_RUNS, _audit_row(report, run_id, BARS.qualified, parameters, started, finished))
    return report


def _describe(exc: BaseException, source: str) -> str:
    msg = str(exc) or exc.__class__.__name__
    return msg if source in msg else f"{source}: {msg}"


def run_source(sink: Sink, run_id: str, source: str, loader: str, parameters: dict,
               produce: Callable[[], ParsedBatch | PreparedBatch]) -> SourceReport:
    """Parse and write one source; any failure is recorded and reported, never raised."""
    started = _utcnow()
    try:
        return write_batch(sink, produce(), run_id, started=started)
    except Exception as exc:  # one bad source must not stop the others
        error = _describe(exc, source)
        try:
            return record_failure(sink, run_id, source, loader, error, started, parameters)
        except Exception as audit_exc:  # e.g. the connection itself is gone
            return SourceReport(source=source, loader=loader, status="failed",
                                error=f"{error} (and the failure could not be recorded: {audit_exc})")


def _parse_and_prepare(sink: Sink, run_id: str, parse: Callable[..., ParsedBatch], path: Path,
                       opts: dict) -> PreparedBatch:
    return prepare_batch(sink, parse(path, **opts), run_id)


def load_files(sink: Sink, paths: Iterable[str | Path], fmt: str, run_id: str | None = None,
               **options) -> list[SourceReport]:
    """Load vendor files of one format; one transaction and one audit row per file.

    Parsing, validating and encoding the next file run in a worker thread while the current one is
    written (the database driver waits on its socket without the GIL), so the client's CPU work
    overlaps the server's.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    parse = FORMATS[fmt]
    run_id = run_id or new_run_id()
    opts = {k: v for k, v in options.items() if v is not None}
    paths = [Path(p) for p in paths]
    reports = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwh-parse") as pool:
        pending = [pool.submit(_parse_and_prepare, sink, run_id, parse, p, opts) for p in paths[:1]]
        for i, path in enumerate(paths):
            future = pending[i]
            if i + 1 < len(paths):
                pending.append(pool.submit(_parse_and_prepare, sink, run_id, parse, paths[i + 1], opts))
            reports.append(run_source(sink, run_id, str(path), fmt, {"format": fmt, **opts},
                                      future.result))
    return reports
