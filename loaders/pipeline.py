"""One source at a time: parse -> validate -> write, in one transaction, with its audit row.

A source that fails (unreadable, wrong format, database error) rolls back whole, is recorded in
raw.loader_runs as failed with the error, and does not stop the other sources of the same command.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
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
    started: pd.Timestamp | None = None


def prepare_batch(sink: Sink, batch: ParsedBatch, run_id: str) -> PreparedBatch:
    """Everything before the transaction: pure CPU work, no database round trip."""
    v = validate(batch)
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
                started: pd.Timestamp | None = None, partial_error: str | None = None) -> SourceReport:
    """Validate and write one parsed source; all of it commits or none of it.
    partial_error: the source could only be read in part (e.g. a later fetch failed); what was
    read is written and the audit row says `partial` with the error."""
    started = started or _utcnow()
    prep = batch if isinstance(batch, PreparedBatch) else prepare_batch(sink, batch, run_id)
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


def _parse_and_prepare(sink: Sink, run_id: str, parse: Callable[..., ParsedBatch], path: Path,
                       opts: dict) -> PreparedBatch:
    started = _utcnow()
    prep = prepare_batch(sink, parse(path, **opts), run_id)
    prep.started = started
    return prep


@dataclass
class _FailedSource:
    source: str
    error: str
    started: pd.Timestamp


def group_rows() -> int:
    """Bars per transaction when a command loads many files (MWH_LOAD_GROUP_ROWS)."""
    return int(os.environ.get("MWH_LOAD_GROUP_ROWS", "1000000"))


def write_group(sink: Sink, items: Iterator[tuple[int, PreparedBatch | _FailedSource]], run_id: str,
                loader: str, parameters: dict, max_rows: int) -> list[tuple[int, SourceReport]]:
    """Write consecutive prepared files in ONE transaction, streaming each into the sink as soon as
    it is ready, until `max_rows` bars are in or the files run out. All of the group commits or
    none of it (a rerun completes it); a file that could not be parsed fails alone."""
    taken: list[tuple[int, PreparedBatch]] = []
    failed: list[tuple[int, _FailedSource]] = []
    rows = 0

    def bars_stream():
        nonlocal rows
        for i, item in items:
            if isinstance(item, _FailedSource):
                failed.append((i, item))
                continue
            taken.append((i, item))
            log.info("writing %s: %d bars, %d actions, %d quarantined (transaction open)",
                     item.batch.source, len(item.bars), len(item.actions), len(item.quarantine))
            yield item.bars, item.encoded_bars
            rows += len(item.bars)
            if rows >= max_rows:
                return

    out: list[tuple[int, SourceReport]] = []
    stream = bars_stream()
    try:
        with sink.transaction() as tx:
            counts = tx.merge_many(BARS, stream)
            for _ in stream:  # a sink that stopped reading early: still account for every file
                pass
            tx.merge_many(CORPORATE_ACTIONS, ((prep.actions, None) for _, prep in taken))
            quarantined = [prep.quarantine for _, prep in taken if len(prep.quarantine)]
            if quarantined:
                tx.append(QUARANTINE, pd.concat(quarantined, ignore_index=True))
            audit = []
            finished = _utcnow()
            for (i, prep), c in zip(taken, counts, strict=True):
                v = prep.checked
                r = SourceReport(source=prep.batch.source, loader=prep.batch.loader,
                                 rows_read=v.rows_read, quarantined=len(v.rejected), loaded=c.loaded,
                                 replaced=c.replaced, duplicate=c.duplicate + v.duplicates_in_source,
                                 seconds=(finished - prep.started).total_seconds())
                r.examples = [f"line {n}: {m}" for n, m in
                              zip(v.rejected["row_number"][:5], v.rejected["reason"][:5])]
                audit.append(_audit_row(r, run_id, BARS.qualified, prep.batch.parameters,
                                        prep.started, finished))
                out.append((i, r))
            if audit:
                tx.append(LOADER_RUNS, pd.concat(audit, ignore_index=True))
    except Exception as exc:  # the whole group rolled back: each of its files failed
        out = [(i, _record_failure_safely(sink, run_id, prep.batch.source, loader,
                                          _describe(exc, prep.batch.source), prep.started, parameters))
               for i, prep in taken]
    out += [(i, _record_failure_safely(sink, run_id, f.source, loader, f.error, f.started, parameters))
            for i, f in failed]
    return out


def _record_failure_safely(sink: Sink, run_id: str, source: str, loader: str, error: str,
                           started: pd.Timestamp, parameters: dict) -> SourceReport:
    try:
        return record_failure(sink, run_id, source, loader, error, started, parameters)
    except Exception as audit_exc:  # e.g. the connection itself is gone
        return SourceReport(source=source, loader=loader, status="failed",
                            error=f"{error} (and the failure could not be recorded: {audit_exc})")


def load_files(sink: Sink, paths: Iterable[str | Path], fmt: str, run_id: str | None = None,
               **options) -> list[SourceReport]:
    """Load vendor files of one format, with one audit row per file.

    Files are written in groups of up to MWH_LOAD_GROUP_ROWS bars, one transaction per group (see
    `write_group`). Parsing, validating and encoding run in a worker thread, two files ahead of the
    writer, so the client's CPU work overlaps the server's; within a group each file is streamed
    into the same COPY as soon as it is ready.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    parse = FORMATS[fmt]
    run_id = run_id or new_run_id()
    opts = {k: v for k, v in options.items() if v is not None}
    parameters = {"format": fmt, **opts}
    paths = [Path(p) for p in paths]
    max_rows = group_rows()
    results: list[tuple[int, SourceReport]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwh-parse") as pool:

        def prepared() -> Iterator[tuple[int, PreparedBatch | _FailedSource]]:
            ahead = 2  # files parsed ahead of the writer
            futures = [pool.submit(_parse_and_prepare, sink, run_id, parse, p, opts) for p in paths[:ahead]]
            for i, path in enumerate(paths):
                if i + ahead < len(paths):
                    futures.append(pool.submit(_parse_and_prepare, sink, run_id, parse, paths[i + ahead], opts))
                started = _utcnow()
                try:
                    yield i, futures[i].result()
                except Exception as exc:  # unreadable, wrong format: this file only
                    yield i, _FailedSource(str(path), _describe(exc, str(path)), started)
                futures[i] = None  # free the batch once written

        items = prepared()
        while len(results) < len(paths):
            results += write_group(sink, items, run_id, fmt, parameters, max_rows)
    return [r for _, r in sorted(results, key=lambda x: x[0])]
