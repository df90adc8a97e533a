"""DuckDB sink: batches go in from pandas/Arrow in one transaction; DuckDB allows one writer per file."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from market_warehouse.loaders.schema import RAW_SCHEMA, TYPES, Table
from market_warehouse.loaders.sinks.base import (
    Encoder,
    MergeCounts,
    Sink,
    Transaction,
    _key_match,
    create_table_sql,
)

_stage_ids = itertools.count()
INSERT_THREADS = 1  # DuckDB threads of the loader's inserts (see _insert_threads)
RUN_ROWS = 250_000  # rows of consecutive batches checked and inserted at once (merge_many)


def encode_arrow(table: Table, frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow: DuckDB scans it without the type sniffing it does on pandas object
    columns. Text columns with few distinct values (symbol, exchange, interval, source, run_id)
    become dictionary arrays: one factorize instead of converting a Python string per row, and
    DuckDB inserts them faster too."""
    columns = {}
    for name in table.column_names:
        values = frame[name]
        if isinstance(values.dtype, pd.CategoricalDtype):  # codes known already (a group's files)
            codes = values.cat.codes.to_numpy().astype("int32")
            columns[name] = pa.DictionaryArray.from_arrays(
                pa.array(codes, mask=codes < 0), pa.array(values.cat.categories, type=pa.string()))
            continue
        if values.dtype == object:
            codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=True)
            if len(uniques) * 4 <= len(values) and all(isinstance(u, str) for u in uniques):
                columns[name] = pa.DictionaryArray.from_arrays(
                    pa.array(codes, type=pa.int32(), mask=codes < 0), pa.array(uniques, type=pa.string()))
                continue
        columns[name] = pa.Array.from_pandas(values)
    return pa.table(columns)


_TICKS_PER_US = {"s": None, "ms": None, "us": 1, "ns": 1000}  # Arrow time units: ticks a microsecond (None: coarser)


def keys_cannot_repeat(table: Table, items: Sequence[object]) -> bool:
    """True when no two rows of these batches can share a key, told from their Arrow columns without a query:
    each batch holds one series (every key column but the last has one non-null value), its times (the last
    key column) are whole microseconds, as stored, and strictly rise or all strictly fall, and no two batches
    hold the same series. A vendor file's bars are that. False: not shown (a pandas batch, several series in
    one batch, sub-microsecond times, ...); the caller's query then decides."""
    *series_columns, time_column = table.key
    seen: set[tuple] = set()
    for item in items:
        if not isinstance(item, pa.Table) or item.num_rows == 0:
            return False
        series = []
        for name in series_columns:
            values = item.column(name)
            distinct = pc.unique(values)
            if values.null_count or len(distinct) != 1:
                return False
            series.append(distinct[0].as_py())
        times = item.column(time_column)
        if times.null_count or not pa.types.is_timestamp(times.type):
            return False
        ticks = times.cast(pa.int64()).to_numpy()
        per_us = _TICKS_PER_US[times.type.unit]
        if per_us is None or (per_us > 1 and (ticks % per_us).any()):
            return False
        step = np.diff(ticks)
        if len(step) and not ((step > 0).all() or (step < 0).all()):
            return False
        if tuple(series) in seen:
            return False
        seen.add(tuple(series))
    return True


class ArrowEncoder(Encoder):
    """A group's bars as one Arrow table (`encode_arrow`, in the parse process), each file's part a
    zero-copy slice of it (in the loading process: a pickled slice would carry the whole buffers)."""

    portable = True

    def whole(self, table: Table, frame: pd.DataFrame, bounds) -> pa.Table:
        return encode_arrow(table, frame)

    def split(self, encoded: pa.Table, bounds) -> list[pa.Table]:
        return [encoded.slice(int(a), int(b) - int(a)) for a, b in itertools.pairwise(bounds)]


def _columns_of(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's columns in the table's order: the frame itself when they are (a selection copies:
    3 ms a file, for every file's corporate actions)."""
    return frame if list(frame.columns) == table.column_names else frame[table.column_names]


class DuckDBTransaction(Transaction):
    text_array = "varchar[]"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        cur = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        try:
            return cur.fetchall()
        except duckdb.InvalidInputError:
            return []

    def _insert_from_frame(self, target: str, table: Table, frame: pd.DataFrame,
                           encoded: pa.Table | None = None) -> None:
        name = f"_frame_{next(_stage_ids)}"
        self.con.register(name, encoded if encoded is not None else frame)
        try:
            cols = ", ".join(table.column_names)
            self.con.execute(f"insert into {target} ({cols}) select {cols} from {name}")
        finally:
            self.con.unregister(name)

    def stage(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> str:
        stage = f"_stage_{table.name}_{next(_stage_ids)}"
        # A temp table typed like the target, so comparisons see the stored types, not pandas'.
        self.con.execute(f"create temp table {stage} as select * from {table.qualified} limit 0")
        self._insert_from_frame(stage, table, frame, encoded)
        return stage

    def append(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> None:
        self._insert_from_frame(table.qualified, table, frame, encoded)

    @contextmanager
    def _insert_threads(self) -> Iterator[None]:
        """The run's checks and insert on INSERT_THREADS threads, then the configured number again (a later dbt
        run in the same process shares the instance). The loader's parser already keeps the other
        core busy: a parallel insert cost more CPU and more time than a serial one (an
        append of 540k bars: 1.5-1.7 s of CPU on 2 threads, 1.1-1.4 s on one)."""
        threads = self.con.execute("select current_setting('threads')").fetchone()[0]
        self.con.execute(f"set threads = {INSERT_THREADS}")
        try:
            yield
        finally:
            self.con.execute(f"set threads = {threads}")

    def _typed(self, table: Table, names: list[str], columns: Sequence[str]) -> str:
        """The registered frames `names` as one relation of `columns` in the table's stored types
        (so that key comparisons see what raw.bars holds, not Arrow's or pandas' types)."""
        types = {c.name: TYPES[c.type]["duckdb"] for c in table.columns}
        cast = ", ".join(f"cast({c} as {types[c]}) as {c}" for c in columns)
        return " union all ".join(f"select {cast} from {name}" for name in names)

    def merge_many(self, table: Table, parts: Iterable[tuple[pd.DataFrame, object]]) -> list[MergeCounts]:
        """Optimistic, set-based and streamed: consecutive batches are taken in runs of about
        RUN_ROWS rows as the producer hands them over, and each run is written by `_merge_run`
        while the producer parses on (DuckDB scans Arrow without the GIL). Runs are written in
        order in the one transaction, so a later run sees the earlier ones: the result, counts
        and newest-wins are those of merging the batches one by one."""
        out: list[MergeCounts] = []
        run: list[tuple[pd.DataFrame, object]] = []
        rows = 0
        for frame, encoded in parts:
            run.append((frame, encoded))
            rows += len(frame)
            if rows >= RUN_ROWS:
                out += self._merge_run(table, run)
                run, rows = [], 0
        return out + self._merge_run(table, run)

    def _merge_run(self, table: Table, seen: list[tuple[pd.DataFrame, object]]) -> list[MergeCounts]:
        """No staging copy: the batches are registered with DuckDB as they are (Arrow, or pandas),
        one query tells whether any key is stored already or shared by two batches (the second part
        skipped where `keys_cannot_repeat` shows it from Arrow: a vendor file's bars), and if not,
        which is every first load, one insert writes them straight from Arrow. Otherwise each batch
        takes `merge` in order. (One check per run, not a scan of the table per file; and no temp
        table: staging wrote every row twice.)"""
        items = [encoded if isinstance(encoded, pa.Table) else _columns_of(table, frame)
                 for frame, encoded in seen if not frame.empty]
        if not items:
            return [MergeCounts() for _ in seen]
        # Consecutive items of one kind (Arrow with one schema, or pandas): one registered frame each.
        pieces: list[list] = []
        for item in items:
            last = pieces[-1][-1] if pieces else None
            same = last is not None and type(item) is type(last) and (
                not isinstance(item, pa.Table) or item.schema.equals(last.schema))
            (pieces[-1].append(item) if same else pieces.append([item]))
        names = []
        try:
            for piece in pieces:
                name = f"_frame_{next(_stage_ids)}"
                self.con.register(name, pa.concat_tables(piece) if isinstance(piece[0], pa.Table)
                                  else pd.concat(piece, ignore_index=True))
                names.append(name)
            with self._insert_threads():  # the checks too: on one thread they cost less CPU
                keys = self._typed(table, names, table.key)
                key = ", ".join(table.key)
                # The batches' key box (min and max of each key column) first: where no stored row falls
                # in it (zone maps answer that without reading the table), the join is not needed.
                box = self.execute(f"select {', '.join(f'min({k}), max({k})' for k in table.key)} from ({keys})")[0]
                in_box = " and ".join(f"{k} between ? and ?" for k in table.key)
                # No key shared by two batches: shown from Arrow for a vendor file's bars, else queried.
                checks = ([] if keys_cannot_repeat(table, items) else
                          [f"exists (select 1 from ({keys}) as s group by {key} having count(*) > 1)"])
                if self.execute(f"select exists (select 1 from {table.qualified} where {in_box})", list(box))[0][0]:
                    checks.append(f"exists (select 1 from ({keys}) as s join {table.qualified} as t "
                                  f"on {_key_match(table, 's', 't')})")
                collide = bool(checks) and self.execute(f"select {' or '.join(checks)}")[0][0]
                if not collide:
                    cols = ", ".join(table.column_names)
                    for name in names:
                        self.con.execute(f"insert into {table.qualified} ({cols}) select {cols} from {name}")
                    return [MergeCounts(loaded=len(frame)) for frame, _ in seen]
        finally:
            for name in names:
                self.con.unregister(name)
        return [self.merge(table, frame, encoded) for frame, encoded in seen]


class DuckDBSink(Sink):
    dialect = "duckdb"

    def __init__(self, path: str | Path, read_only: bool = False, config: dict[str, str] | None = None):
        """config: DuckDB settings (memory_limit, threads, temp_directory), from the profile. They
        are SET after connecting, not passed to connect(): dbt-duckdb, in the same process, opens
        the file without a config, and DuckDB refuses a second connection whose config differs."""
        self.path = str(path)
        self.con = duckdb.connect(self.path, read_only=read_only)
        for key, value in (config or {}).items():
            # e.g. temp_directory, once the instance has spilled: it keeps its own
            with contextlib.suppress(duckdb.Error):
                self.con.execute(f"set {key} = '{value}'")
        self.con.execute("set TimeZone = 'UTC'")

    def encode(self, table: Table, frame: pd.DataFrame) -> pa.Table:
        return encode_arrow(table, frame)

    def encode_parts(self, table: Table, frame: pd.DataFrame, bounds) -> list[pa.Table]:
        return ArrowEncoder().split(encode_arrow(table, frame), bounds)

    def encoder(self) -> ArrowEncoder:
        return ArrowEncoder()

    def ensure_tables(self, tables: Sequence[Table]) -> None:
        self.con.execute(f"create schema if not exists {RAW_SCHEMA}")
        for table in tables:
            # No primary key: DuckDB's ART index slows bulk loads and the merge already keeps keys
            # unique (one writer per file); dbt's unique tests check it.
            self.con.execute(create_table_sql(table, "duckdb", unique_key=False))

    @contextmanager
    def transaction(self) -> Iterator[DuckDBTransaction]:
        self.con.execute("begin transaction")
        try:
            yield DuckDBTransaction(self.con)
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def query(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        cur = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        return cur.fetchall()

    def close(self) -> None:
        self.con.close()
