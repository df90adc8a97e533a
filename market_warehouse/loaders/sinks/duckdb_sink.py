"""DuckDB sink: batches go in from pandas/Arrow in one transaction; DuckDB allows one writer per file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from market_warehouse.loaders.schema import RAW_SCHEMA, Table
from market_warehouse.loaders.sinks.base import Sink, Transaction, create_table_sql

_stage_ids = itertools.count()


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


class DuckDBSink(Sink):
    dialect = "duckdb"

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = str(path)
        self.con = duckdb.connect(self.path, read_only=read_only)
        self.con.execute("set TimeZone = 'UTC'")

    def encode(self, table: Table, frame: pd.DataFrame) -> pa.Table:
        # DuckDB scans Arrow without the type sniffing it does on pandas object columns.
        return pa.Table.from_pandas(frame[table.column_names], preserve_index=False)

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
