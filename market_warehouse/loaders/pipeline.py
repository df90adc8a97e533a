"""One source at a time: parse -> validate -> write, in one transaction, with its audit row.

A source that fails (unreadable, wrong format, database error) rolls back whole, is recorded in
raw.loader_runs as failed with the error, and does not stop the other sources of the same command.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from market_warehouse.config import ConfigError
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
    # A file of one series (symbol, exchange, interval): that series and its bars' times (int64 ns),
    # known from the group's codes, so that `CollisionTracker` need not look at the frame.
    series: tuple | None = None
    times: np.ndarray | None = None
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


@dataclass
class _GroupWork:
    """A group of files parsed, validated, given its audit columns and encoded as one batch: what a
    parse process hands back (picklable; the encoded rows whole, not in per-file slices, since a
    pickled Arrow slice carries its whole buffers). `_cut_group` turns it into one PreparedBatch per
    file in the loading process."""

    sources: list[str]
    loader: str
    parameters: list[dict]
    at: pd.Timestamp
    bars: pd.DataFrame
    actions: pd.DataFrame
    quarantine: pd.DataFrame
    cuts: list[tuple[slice, slice, slice]]
    duplicates: np.ndarray
    refused: dict[int, str]
    encoded: object  # the group's bars as `encoder.whole` made them


def _group_work(encoder, run_id: str, group: ParsedGroup) -> _GroupWork:
    """A group of files validated as one, audit columns set and encoded once (pure CPU work)."""
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
    cuts = [g.slices(k) for k in range(len(group.sources))]
    return _GroupWork(sources=group.sources, loader=group.batch.loader, parameters=group.parameters, at=at,
                      bars=bars, actions=actions, quarantine=quarantine, cuts=cuts, duplicates=g.duplicates,
                      refused=g.refused, encoded=encoder.whole(BARS, bars, _bounds(cuts)))


def _bounds(cuts: list[tuple[slice, slice, slice]]) -> list[int]:
    return [0, *[c[0].stop for c in cuts]]


def _cut_group(encoder, work: _GroupWork, started: pd.Timestamp) -> list[PreparedBatch | _FailedSource]:
    """One PreparedBatch per file of a group (slices), so that writing, counts, audit rows and the
    quarantine stay per file exactly as with `prepare_batch`."""
    bars, actions, quarantine, cuts = work.bars, work.actions, work.quarantine, work.cuts
    encoded = encoder.split(work.encoded, _bounds(cuts))
    no_actions, no_quarantine = actions.iloc[:0], quarantine.iloc[:0]
    series_cols = list(BARS.key[:-1])
    categorical = all(isinstance(bars[c].dtype, pd.CategoricalDtype) for c in series_cols)
    codes = [bars[c].array.codes for c in series_cols] if categorical else []
    names = [bars[c].array.categories for c in series_cols] if categorical else []
    times = bars[BARS.key[-1]].to_numpy(dtype="datetime64[ns]").view("int64") if categorical else None
    out: list[PreparedBatch | _FailedSource] = []
    for k, (b, a, r) in enumerate(cuts):
        if k in work.refused:
            out.append(_FailedSource(work.sources[k], work.refused[k], started))
            continue
        # One slice per frame and file (slicing a frame of many columns is most of the per-file cost).
        file_bars = bars.iloc[b]
        file_actions = actions.iloc[a] if a.stop > a.start else no_actions
        file_quarantine = quarantine.iloc[r] if r.stop > r.start else no_quarantine
        checked = Validated(bars=file_bars, actions=file_actions, rejected=file_quarantine,
                            duplicates_in_source=int(work.duplicates[k]))
        series = None
        if categorical and b.stop > b.start:
            first = [int(cc[b.start]) for cc in codes]
            if min(first) >= 0 and all((cc[b] == f).all() for cc, f in zip(codes, first, strict=True)):
                series = tuple(n[f] for n, f in zip(names, first, strict=True))
        out.append(PreparedBatch(source=work.sources[k], loader=work.loader,
                                 source_parameters=work.parameters[k], checked=checked, at=work.at, bars=file_bars,
                                 actions=file_actions, quarantine=file_quarantine, encoded_bars=encoded[k],
                                 started=started, series=series, times=times[b] if series else None))
    return out


def _parse_groups(encoder, run_id: str, fmt: str, paths: list[Path], opts: dict,
                  env: dict[str, str] | None = None) -> tuple[pd.Timestamp, list]:
    """The CPU half of `_parse_and_prepare_many`, run in a parse process (or a thread): the files
    parsed as groups, each validated and encoded (`_GroupWork`), in file order, as
    (positions, _GroupWork), or (positions, error line) for a file that cannot be read or a group
    that failed past reading. env: the loading process's MWH_* settings (a process forked from the
    fork server has that server's environment, not the loading process's)."""
    if env is not None:
        for name in [n for n in os.environ if n.startswith("MWH_") and n not in env]:
            del os.environ[name]
        os.environ.update(env)
    started = utcnow()
    out: list[tuple[list[int], _GroupWork | str]] = []
    for where, result in GROUP_FORMATS[fmt](paths, **opts):
        if isinstance(result, Exception):
            out.append(([where], describe_error(result, str(paths[where]))))
            continue
        try:
            work = _group_work(encoder, run_id, result)
            if env is not None:  # in a parse process: one block per dtype, cheaper to send and to slice per file
                work.bars = work.bars.copy()
            out.append((where, work))
        except Exception as exc:  # noqa: BLE001 - as a file's own error, for each file of the group
            out.append((where, [describe_error(exc, s) for s in result.sources]))
    return started, out


def _prepared_groups(encoder, paths: list[Path], started: pd.Timestamp, groups: list
                     ) -> list[PreparedBatch | _FailedSource]:
    out: list[PreparedBatch | _FailedSource | None] = [None] * len(paths)
    for where, work in groups:
        if isinstance(work, _GroupWork):
            preps = _cut_group(encoder, work, started)
        elif isinstance(work, str):
            preps = [_FailedSource(str(paths[where[0]]), work, started)]
        else:
            preps = [_FailedSource(str(paths[i]), error, started) for i, error in zip(where, work, strict=True)]
        for i, prep in zip(where, preps, strict=True):
            out[i] = prep
    return out


def _parse_and_prepare_many(sink: Sink, run_id: str, fmt: str, paths: list[Path], opts: dict
                            ) -> list[PreparedBatch | _FailedSource]:
    """`_parse_and_prepare` for several files at once (formats in GROUP_FORMATS), one result per
    file in order. A file that cannot be read fails alone; an error past reading fails its group."""
    encoder = sink.encoder()
    started, groups = _parse_groups(encoder, run_id, fmt, paths, opts)
    return _prepared_groups(encoder, paths, started, groups)


def group_files() -> int:
    """Files parsed and validated as one batch (MWH_LOAD_GROUP_FILES; 1 = one file at a time)."""
    return max(1, int(os.environ.get("MWH_LOAD_GROUP_FILES", "100")))


def parse_processes() -> int:
    """Processes of a load of many files (MWH_LOAD_PARSE_PROCESSES). 1 (default): the loading
    process does everything (the parse in a thread, which the GIL keeps from overlapping the
    writes). N >= 2: N - 1 parse processes parse, validate and encode the next groups while the
    loading process writes. On this 2-core machine under load, 2 cost more CPU and more time than 1
    (docs/performance.md, "Loader write path"); a quiet machine was not measured."""
    raw = os.environ.get("MWH_LOAD_PARSE_PROCESSES")
    if raw is None or raw.strip() == "":
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"MWH_LOAD_PARSE_PROCESSES={raw!r}: a whole number, 1 (parse in the loading process) "
                          "or more (that many processes in all)")
    return n


_pool: tuple[int, ProcessPoolExecutor] | None = None


def _parse_pool(workers: int) -> ProcessPoolExecutor:
    """The parse processes, kept for the next load of this process (a pool of another size, or a
    broken one, is replaced). forkserver: no copy of the loading process's DuckDB threads and
    locks (fork), and the imports are paid once by the server (spawn pays them per process)."""
    global _pool
    if _pool is not None and (_pool[0] != workers or getattr(_pool[1], "_broken", False)):
        shutdown_parse_processes()
    if _pool is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        _pool = (workers, ProcessPoolExecutor(max_workers=workers, mp_context=context))
    return _pool[1]


def shutdown_parse_processes() -> None:
    """Stop the parse processes kept for the next load (they also stop when this process ends)."""
    global _pool
    if _pool is not None:
        _pool[1].shutdown(wait=True, cancel_futures=True)
        _pool = None


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While parse processes start: no `__main__` for multiprocessing to hand them. They need none
    (the work is in this module), and a script that calls `load_files` without an
    `if __name__ == "__main__"` guard would otherwise run again in each of them."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    for k in saved:
        setattr(main, k, None) if k == "__spec__" else delattr(main, k)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def _mwh_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("MWH_")}


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
        if prep.series is not None:  # one series, known from the group's codes
            parts = [(prep.series, None)]
        elif all(_one_value(bars[c]) for c in series):  # one series: no groupby
            parts = [(tuple(bars[c].iat[0] for c in series), bars)]
        else:
            parts = bars.groupby(series, sort=False)
        for group, part in parts:
            # Within one series a bar is its time: compare the instants themselves (exact, no hashing).
            hashes = (prep.times if part is None else
                      part[key[-1]].to_numpy(dtype="datetime64[ns]").view("int64"))
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
    then cut it into per-file batches: audit rows, counts and quarantine stay per file. With
    MWH_LOAD_PARSE_PROCESSES=N >= 2, groups after the first are parsed in N - 1 parse processes
    (`_parse_groups`) and cut in this process (`_cut_group`); the writes are the same, in order.
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
    processes = parse_processes()
    encoder = sink.encoder()
    # Parse processes only where they can overlap something: groups of files, two groups or more,
    # and an encoder that can run away from the sink's connection.
    in_processes = processes > 1 and per_group > 1 and len(chunks) > 1 and encoder.portable
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mwh-parse") as pool:
        procs = _parse_pool(processes - 1) if in_processes else None
        env = _mwh_env()

        def work(chunk: list[Path]):
            if procs is not None and chunk is not chunks[0]:
                with _main_hidden():  # the submit starts the processes it needs
                    return procs.submit(_parse_groups, encoder, run_id, fmt, chunk, opts, env)
            if per_group > 1:
                return pool.submit(_parse_and_prepare_many, sink, run_id, fmt, chunk, opts)
            return pool.submit(_parse_and_prepare, sink, run_id, fmt, chunk[0], opts)

        def prepared() -> Iterator[tuple[int, PreparedBatch | _FailedSource]]:
            # files (or groups) parsed ahead of the writer: one per parse process
            # (the first group in this process's parse thread, while the parse processes start)
            ahead = 2 if per_group == 1 else (processes if procs is not None else 1)
            futures = [work(c) for c in chunks[:ahead]]
            i = 0
            for c, chunk in enumerate(chunks):
                if c + ahead < len(chunks):
                    futures.append(work(chunks[c + ahead]))
                started = utcnow()
                try:
                    result = futures[c].result()
                    if procs is not None and c > 0:
                        result = _prepared_groups(encoder, chunk, *result)
                except BrokenProcessPool:  # a parse process died (killed, out of memory): each file fails
                    why = ("the parse process died (killed, or out of memory) before handing this file back; "
                           "MWH_LOAD_PARSE_PROCESSES=1 parses in the loading process")
                    result = [_FailedSource(str(p), f"{p}: {why}", started) for p in chunk]
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
