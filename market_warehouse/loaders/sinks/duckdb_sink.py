"""DuckDB sink: batches go in from pandas/Arrow in one transaction; DuckDB allows one writer per file."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from market_warehouse.loaders.schema import RAW_SCHEMA, Table
from market_warehouse.loaders.sinks.base import MergeCounts, Sink, Transaction, _key_match, create_table_sql

_stage_ids = itertools.count()
STAGE_ROWS = 200_000  # rows of consecutive files staged by one insert (merge_many)


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

    def merge_many(self, table: Table, parts: Iterable[tuple[pd.DataFrame, object]]) -> list[MergeCounts]:
        """Optimistic and set-based: every batch is staged into ONE temp table as the producer hands
        it over (DuckDB scans the Arrow table without the GIL, so parsing goes on meanwhile); then
        one join tells whether any key is stored already or shared by two batches. If not, which is
        every first load, one insert writes the whole group. Otherwise each batch takes `merge` in
        order, so counts and newest-wins stay per batch. (One check per group instead of one scan
        of the table per file: at 1,000 files that scan was most of the load.)"""
        stage = f"_stage_many_{table.name}_{next(_stage_ids)}"
        cols = ", ".join(table.column_names)
        key = ", ".join(table.key)
        self.con.execute(f"create temp table {stage} as select * from {table.qualified} limit 0")
        seen: list[tuple[pd.DataFrame, object]] = []
        # Consecutive parts not staged yet (all Arrow, or all pandas): one insert per STAGE_ROWS
        # rows, not one per file (each insert of a registered frame has a fixed cost).
        pending: list = []
        pending_rows = 0

        def stage_pending() -> None:
            nonlocal pending_rows
            if pending:
                if isinstance(pending[0], pa.Table):
                    self._insert_from_frame(stage, table, None, pa.concat_tables(pending))
                else:
                    self._insert_from_frame(stage, table, pd.concat(pending, ignore_index=True))
                pending.clear()
                pending_rows = 0

        try:
            for frame, encoded in parts:
                seen.append((frame, encoded))
                if frame.empty:
                    continue
                item = encoded if isinstance(encoded, pa.Table) else frame[table.column_names]
                if pending and not (type(item) is type(pending[0]) and (
                        not isinstance(item, pa.Table) or item.schema.equals(pending[0].schema))):
                    stage_pending()
                pending.append(item)
                pending_rows += len(item)
                if pending_rows >= STAGE_ROWS:
                    stage_pending()
            stage_pending()
            if not seen:
                return []
            collide = self.execute(f"""
                select exists (select 1 from {stage} as s join {table.qualified} as t on {_key_match(table, 's', 't')})
                    or exists (select 1 from {stage} group by {key} having count(*) > 1)""")[0][0]
            if not collide:
                self.con.execute(f"insert into {table.qualified} ({cols}) select {cols} from {stage}")
                return [MergeCounts(loaded=len(frame)) for frame, _ in seen]
        finally:
            self.con.execute(f"drop table if exists {stage}")
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
        # DuckDB scans Arrow without the type sniffing it does on pandas object columns.
        return pa.Table.from_pandas(frame[table.column_names], preserve_index=False)

    def encode_parts(self, table: Table, frame: pd.DataFrame, bounds) -> list[pa.Table]:
        whole = self.encode(table, frame)  # once; each part is a zero-copy slice
        return [whole.slice(int(a), int(b) - int(a)) for a, b in itertools.pairwise(bounds)]

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
