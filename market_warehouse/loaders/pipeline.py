"""One source at a time: parse -> validate -> write, in one transaction, with its audit row.

A source that fails (unreadable, wrong format, database error) rolls back whole, is recorded in
raw.loader_runs as failed with the error, and does not stop the other sources of the same command.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from market_warehouse.loaders.schema import BARS, CORPORATE_ACTIONS, LOADER_RUNS, QUARANTINE
from market_warehouse.loaders.sinks import Sink
from market_warehouse.loaders.sources import FORMATS
from market_warehouse.loaders.sources.common import GROUP_FORMATS, ParsedBatch, ParsedGroup
from market_warehouse.loaders.validate import Validated, validate, validate_many
from market_warehouse.runs import (
    SourceReport,
    audit_record,
    audit_row,
    describe_error,
    examples,
    new_run_id,
    quarantine_frame,
    record_failure,
    utcnow,
    with_audit,
)

log = logging.getLogger(__name__)

# Kept for callers of the former names (benchmarks/load.py).
_utcnow, _with_audit = utcnow, with_audit
__all__ = ["FORMATS", "SourceReport", "load_files", "new_run_id", "prepare_batch", "write_batch"]


@dataclass
class PreparedBatch:
    """A source ready to write: validated, audit columns set, and the rows already encoded for the
    sink's bulk path (so that this CPU work can run while the previous source is being written).
    A file of a group holds slices of the group's frames (its checked rows carry the audit columns
    too, and its rejected rows are its quarantine rows), not a copy of its parsed batch."""

    source: str
    loader: str
    source_parameters: dict
    checked: Validated
    at: pd.Timestamp
    bars: pd.DataFrame
    actions: pd.DataFrame
    quarantine: pd.DataFrame
    encoded_bars: object = None
    started: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)  # keys shared with other files of the command
    collisions: dict[str, int] = field(default_factory=dict)  # earlier file -> bars this one replaces

    def parameters(self) -> dict:
        extra = {"collides_with": self.collisions} if self.collisions else {}
        return {**self.source_parameters, **extra}


def prepare_batch(sink: Sink, batch: ParsedBatch, run_id: str) -> PreparedBatch:
    """Everything before the transaction: pure CPU work, no database round trip."""
    v = validate(batch)
    at = utcnow()
    bars = with_audit(v.bars, batch.source, run_id, at)[BARS.column_names]
    return PreparedBatch(
        source=batch.source, loader=batch.loader, source_parameters=batch.parameters, checked=v, at=at, bars=bars,
        actions=with_audit(v.actions, batch.source, run_id, at)[CORPORATE_ACTIONS.column_names],
        quarantine=quarantine_frame(v.rejected, run_id, batch.source, BARS, at),
        encoded_bars=sink.encode(BARS, bars),
    )


def _report(prep: PreparedBatch) -> SourceReport:
    v = prep.checked
    return SourceReport(source=prep.source, loader=prep.loader, rows_read=v.rows_read,
                        quarantined=len(v.rejected), examples=examples(v.rejected) if len(v.rejected) else [],
                        notes=list(prep.notes))


def write_batch(sink: Sink, batch: ParsedBatch | PreparedBatch, run_id: str,
                started: pd.Timestamp | None = None, partial_error: str | None = None) -> SourceReport:
    """Validate and write one parsed source; all of it commits or none of it.
    partial_error: the source could only be read in part (e.g. a later fetch failed); what was
    read is written and the audit row says `partial` with the error."""
    started = started or utcnow()
    prep = batch if isinstance(batch, PreparedBatch) else prepare_batch(sink, batch, run_id)
    v = prep.checked
    report = _report(prep)
    if partial_error:
        report.status, report.error = "partial", partial_error
    with sink.transaction() as tx:
        log.info("writing %s: %d bars, %d actions, %d quarantined (transaction open)",
                 prep.source, len(prep.bars), len(prep.actions), len(prep.quarantine))
        counts = tx.merge(BARS, prep.bars, encoded=prep.encoded_bars)
        tx.merge(CORPORATE_ACTIONS, prep.actions)
        if len(prep.quarantine):
            tx.append(QUARANTINE, prep.quarantine)
        report.loaded, report.replaced = counts.loaded, counts.replaced
        report.duplicate = counts.duplicate + v.duplicates_in_source
        finished = utcnow()
        report.seconds = (finished - started).total_seconds()
        tx.append(LOADER_RUNS, audit_row(report, run_id, BARS, prep.parameters(), started, finished))
    return report


def _parse_and_prepare(sink: Sink, run_id: str, fmt: str, path: Path, opts: dict) -> PreparedBatch:
    started = utcnow()
    parse = FORMATS[fmt]
    prep = prepare_batch(sink, parse(path, **opts), run_id)
    prep.started = started
    return prep


@dataclass
class _FailedSource:
    source: str
    error: str
    started: pd.Timestamp


def _prepare_group(sink: Sink, run_id: str, group: ParsedGroup, started: pd.Timestamp
                   ) -> list[PreparedBatch | _FailedSource]:
    """A group of files parsed as one batch, validated as one, audit columns set and encoded once;
    then cut into one PreparedBatch per file (slices), so that writing, counts, audit rows and the
    quarantine stay per file exactly as with `prepare_batch`."""
    g = validate_many(group.batch, group.bounds, group.sources, group.malformed)
    v, at = g.checked, utcnow()
    # source and run_id as categoricals: codes the group has already (each row's file), no string per
    # row to build here, and none for the sink to hash again when it encodes them.
    file_codes, file_names = pd.factorize(pd.Series(group.sources, dtype=object))
    names = pd.Index(file_names, dtype=object)

    def by_file(part: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(file_codes[part], categories=names)

    with_source = {**{c: v.bars[c].array for c in v.bars.columns}, "source": by_file(g.bar_part),
                   "run_id": pd.Categorical.from_codes(np.zeros(len(v.bars), dtype="int8"), categories=[run_id]),
                   "loaded_at": at}
    bars = pd.DataFrame({c: with_source[c] for c in BARS.column_names}, index=v.bars.index,
                        copy=False)  # the group's columns as they are: no copy of a million rows
    actions = v.actions.assign(source=np.asarray(group.sources, dtype=object)[g.action_part], run_id=run_id,
                               loaded_at=at)[CORPORATE_ACTIONS.column_names]
    quarantine = v.rejected.assign(run_id=run_id, source=np.asarray(group.sources, dtype=object)[g.rejected_part],
                                   target_table=BARS.qualified, quarantined_at=at)[QUARANTINE.column_names]
    n = len(group.sources)
    cuts = [g.slices(k) for k in range(n)]
    encoded = sink.encode_parts(BARS, bars, [0, *[c[0].stop for c in cuts]])
    no_actions, no_quarantine = actions.iloc[:0], quarantine.iloc[:0]
    out: list[PreparedBatch | _FailedSource] = []
    for k, (b, a, r) in enumerate(cuts):
        if k in g.refused:
            out.append(_FailedSource(group.sources[k], g.refused[k], started))
            continue
        # One slice per frame and file (slicing a frame of many columns is most of the per-file cost).
        file_bars = bars.iloc[b]
        file_actions = actions.iloc[a] if a.stop > a.start else no_actions
        file_quarantine = quarantine.iloc[r] if r.stop > r.start else no_quarantine
        checked = Validated(bars=file_bars, actions=file_actions, rejected=file_quarantine,
                            duplicates_in_source=int(g.duplicates[k]))
        out.append(PreparedBatch(source=group.sources[k], loader=group.batch.loader,
                                 source_parameters=group.parameters[k], checked=checked, at=at, bars=file_bars,
                                 actions=file_actions, quarantine=file_quarantine, encoded_bars=encoded[k],
                                 started=started))
    return out


def _parse_and_prepare_many(sink: Sink, run_id: str, fmt: str, paths: list[Path], opts: dict
                            ) -> list[PreparedBatch | _FailedSource]:
    """`_parse_and_prepare` for several files at once (formats in GROUP_FORMATS), one result per
    file in order. A file that cannot be read fails alone; an error past reading fails its group."""
    started = utcnow()
    out: list[PreparedBatch | _FailedSource | None] = [None] * len(paths)
    for where, result in GROUP_FORMATS[fmt](paths, **opts):
        if isinstance(result, Exception):
            out[where] = _FailedSource(str(paths[where]), describe_error(result, str(paths[where])), started)
            continue
        try:
            preps = _prepare_group(sink, run_id, result, started)
        except Exception as exc:  # noqa: BLE001 - as a file's own error, for each file of the group
            preps = [_FailedSource(s, describe_error(exc, s), started) for s in result.sources]
        for i, prep in zip(where, preps, strict=True):
            out[i] = prep
    return out


def group_files() -> int:
    """Files parsed and validated as one batch (MWH_LOAD_GROUP_FILES; 1 = one file at a time)."""
    return max(1, int(os.environ.get("MWH_LOAD_GROUP_FILES", "100")))


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
                     item.source, len(item.bars), len(item.actions), len(item.quarantine))
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
            finished = utcnow()
            for (i, prep), c in zip(taken, counts, strict=True):
                r = _report(prep)
                r.loaded, r.replaced = c.loaded, c.replaced
                r.duplicate = c.duplicate + prep.checked.duplicates_in_source
                r.seconds = (finished - prep.started).total_seconds()
                audit.append(audit_record(r, run_id, BARS, prep.parameters(), prep.started, finished))
                out.append((i, r))
            if audit:
                tx.append(LOADER_RUNS, pd.DataFrame(audit))
    except Exception as exc:  # noqa: BLE001 - the whole group rolled back: each of its files failed
        out = [(i, record_failure(sink, run_id, prep.source, loader,
                                  describe_error(exc, prep.source), prep.started, parameters, BARS))
               for i, prep in taken]
    out += [(i, record_failure(sink, run_id, f.source, loader, f.error, f.started, parameters, BARS))
            for i, f in failed]
    return out


# `X-fixed.csv` (or `X_repaired.csv.gz`, ...) is the repaired twin of `X.csv`.
_REPAIRED = re.compile(r"(?P<stem>.+)[-_](?:fixed|repaired)(?P<ext>\..+)")


def repaired_twin_of(path: Path) -> str | None:
    """The file name `path` is the repaired twin of, or None."""
    m = _REPAIRED.fullmatch(path.name)
    return m["stem"] + m["ext"] if m else None


def order_repaired_last(paths: list[Path]) -> list[Path]:
    """The files in command-line order, except that a repaired file (`X-fixed.csv`) goes right after
    its unrepaired twin (`X.csv`) when both are given, wherever the glob put them: so that where the
    two share bars, the repaired values are the ones kept."""
    position = {p.name: i for i, p in enumerate(paths)}

    def rank(item: tuple[int, Path]) -> float:
        i, p = item
        twin = repaired_twin_of(p)
        return position[twin] + 0.5 if twin in position and position[twin] > i else i

    return [p for _, p in sorted(enumerate(paths), key=rank)]


def _one_value(column: pd.Series) -> bool:
    """Whether every row holds the first row's value (a Categorical: by its codes)."""
    values = column.array.codes if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()
    return bool((values == values[0]).all())


class CollisionTracker:
    """Bars that several files of one command share (same symbol, exchange, interval and time). The
    files are written in order and the newest write wins: the later file's values are kept, and a
    repaired twin always comes after its original (`order_repaired_last`). Each collision is noted on
    the later file, per earlier file, with the number of bars."""

    def __init__(self) -> None:
        self._seen: dict[tuple, list[tuple[str, np.ndarray]]] = {}

    def note(self, prep: PreparedBatch) -> None:
        bars = prep.bars
        if bars.empty:
            return
        key = list(BARS.key)
        series = key[:-1]  # symbol, exchange, interval
        if all(_one_value(bars[c]) for c in series):  # one series: no groupby
            parts = [(tuple(bars[c].iat[0] for c in series), bars)]
        else:
            parts = bars.groupby(series, sort=False)
        for group, part in parts:
            # Within one series a bar is its time: compare the instants themselves (exact, no hashing).
            hashes = part[key[-1]].to_numpy(dtype="datetime64[ns]").view("int64")
            earlier = self._seen.setdefault(group, [])
            for source, seen in earlier:
                n = int(np.isin(hashes, seen).sum())
                if n:
                    prep.collisions[source] = prep.collisions.get(source, 0) + n
            earlier.append((prep.source, hashes))
        me = Path(prep.source)
        for source, n in prep.collisions.items():
            rule = ("it is the repaired twin" if repaired_twin_of(me) == Path(source).name
                    else "later on the command line")
            prep.notes.append(f"shares {n:,} bars with {source}: this file's values are kept ({rule})")
            log.warning("%s %s", prep.source, prep.notes[-1])


def load_files(sink: Sink, paths: Iterable[str | Path], fmt: str, run_id: str | None = None,
               **options) -> list[SourceReport]:
    """Load vendor files of one format, with one audit row per file.

    Files sharing bars: the later one's values are kept, a repaired twin (`X-fixed.csv`) is loaded
    after its original whatever the order given, and each collision is reported (`CollisionTracker`).

    Files are written in groups of up to MWH_LOAD_GROUP_ROWS bars, one transaction per group (see
    `write_group`). Parsing, validating and encoding run in a worker thread ahead of the writer, so
    the client's CPU work overlaps the server's; within a group each file is streamed into the same
    COPY (DuckDB: the same staging insert) as soon as it is ready. Formats in GROUP_FORMATS parse
    and validate MWH_LOAD_GROUP_FILES files as one batch (`validate_many`, per-file rules kept),
    then cut it into per-file batches: audit rows, counts and quarantine stay per file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    run_id = run_id or new_run_id()
    opts = {k: v for k, v in options.items() if v is not None}
    parameters = {"format": fmt, **opts}
    paths = order_repaired_last([Path(p) for p in paths])
    max_rows = group_rows()
    results: list[tuple[int, SourceReport]] = []
    collisions = CollisionTracker()
    per_group = group_files() if fmt in GROUP_FORMATS else 1
    chunks = [paths[i:i + per_group] for i in range(0, len(paths), per_group)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwh-parse") as pool:

        def work(chunk: list[Path]):
            if per_group > 1:
                return pool.submit(_parse_and_prepare_many, sink, run_id, fmt, chunk, opts)
            return pool.submit(_parse_and_prepare, sink, run_id, fmt, chunk[0], opts)

        def prepared() -> Iterator[tuple[int, PreparedBatch | _FailedSource]]:
            ahead = 2 if per_group == 1 else 1  # files (or groups) parsed ahead of the writer
            futures = [work(c) for c in chunks[:ahead]]
            i = 0
            for c, chunk in enumerate(chunks):
                if c + ahead < len(chunks):
                    futures.append(work(chunks[c + ahead]))
                started = utcnow()
                try:
                    result = futures[c].result()
                except Exception as exc:  # noqa: BLE001 - unreadable, wrong format: this file only
                    result = [_FailedSource(str(p), describe_error(exc, str(p)), started) for p in chunk]
                futures[c] = None  # free the batch once written
                for prep in result if isinstance(result, list) else [result]:
                    if isinstance(prep, PreparedBatch):
                        collisions.note(prep)
                    yield i, prep
                    i += 1

        items = prepared()
        while len(results) < len(paths):
            results += write_group(sink, items, run_id, fmt, parameters, max_rows)
    return [r for _, r in sorted(results, key=lambda x: x[0])]
