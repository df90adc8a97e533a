"""PostgreSQL / TimescaleDB sink: batches go in with COPY (psycopg 3), in one transaction per source.

With the timescaledb extension in the database, time-series tables become hypertables (chunked by
time, see market_warehouse/loaders/schema.py); without it they are ordinary tables with the same columns and keys.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from market_warehouse.config import project_dir
from market_warehouse.loaders.schema import RAW_SCHEMA, Table
from market_warehouse.loaders.sinks.base import Encoder, MergeCounts, Sink, Transaction, create_table_sql

_stage_ids = itertools.count()
# Rows per COPY write: the client formats the next chunk while the server ingests the last one.
COPY_CHUNK_ROWS = 50_000


_QUOTED = re.compile(r"('(?:[^']|'')*')")


def _pg(sql: str) -> str:
    """The sinks' shared SQL uses `?` placeholders (DuckDB's); psycopg wants `%s`. Literals are
    left alone, and a literal `%` is escaped."""
    parts = _QUOTED.split(sql)
    return "".join(p.replace("%", "%%") if i % 2 else p.replace("%", "%%").replace("?", "%s")
                   for i, p in enumerate(parts))


@functools.cache
def _analyze_threshold_sql(reloptions: str, row_count: str) -> str:
    """SQL for how many changed rows make a table's statistics stale (autovacuum's rule, from the table's
    storage parameters or the server's settings): the dbt macro mwh_analyze_threshold (macros/cross_db.sql),
    rendered from the project's file so the loaders and the models' post-hook apply one rule."""
    import jinja2

    text = (project_dir() / "macros" / "cross_db.sql").read_text()
    found = re.search(r"{% macro mwh_analyze_threshold\(.*?{%- endmacro %}", text, re.S)
    if found is None:
        raise RuntimeError("macros/cross_db.sql: the macro mwh_analyze_threshold is missing")
    macro = jinja2.Environment().from_string(found.group(0)).module.mwh_analyze_threshold
    return str(macro(reloptions, row_count))


def _stale_sql() -> str:
    """Per table of %s (schema-qualified) and per chunk of a hypertable: its changed rows since the last
    analyze, whether it was ever analyzed, and the threshold (for a hypertable's own row, over all its
    chunks)."""
    own_rows = "case when is_table and chunk_count > 0 then chunks_live else n_live_tup end"
    return f"""
with tables as (
    select c.oid, format('%%I.%%I', n.nspname, c.relname) as qualified
    from pg_class as c
    inner join pg_namespace as n on c.relnamespace = n.oid
    where format('%%I.%%I', n.nspname, c.relname) = any(%s)
),

parts as (  -- a table itself, or a hypertable's chunks (its inheritance children)
    select tables.qualified, tables.oid as relid from tables
    union all
    select tables.qualified, pg_inherits.inhrelid from tables
    inner join pg_inherits on tables.oid = pg_inherits.inhparent
),

part_stats as (
    select
        parts.qualified,
        format('%%I.%%I', s.schemaname, s.relname) as part,
        parts.relid = (select oid from tables where tables.qualified = parts.qualified) as is_table,
        s.n_live_tup,
        s.n_mod_since_analyze,
        coalesce(s.last_analyze, s.last_autoanalyze) is null as never_analyzed,
        c.reloptions
    from parts
    inner join pg_stat_user_tables as s on parts.relid = s.relid
    inner join pg_class as c on parts.relid = c.oid
),

with_chunks as (
    select
        *,
        count(*) filter (where not is_table) over per_table as chunk_count,
        sum(n_live_tup) filter (where not is_table) over per_table as chunks_live,
        sum(n_mod_since_analyze) filter (where not is_table) over per_table as chunks_changed
    from part_stats
    window per_table as (partition by qualified)
)

select
    qualified,
    part,
    is_table,
    case when is_table and chunk_count > 0 then chunks_changed else n_mod_since_analyze end as changed,
    never_analyzed,
    {_analyze_threshold_sql("reloptions", own_rows)} as threshold
from with_chunks
"""


def stale_statistics(conn: psycopg.Connection, tables: Sequence[str]) -> list[str]:
    """What to ANALYZE of `tables` (schema-qualified) so a build right after a load plans on fresh
    estimates (not nested loops over "empty" tables), without re-sampling what did not change: a plain
    table whose rows changed by more than autovacuum would wait for since its last analyze
    (_analyze_threshold_sql: its storage parameters or the server's settings), or that was never analyzed;
    of a hypertable, such chunks, or the whole hypertable (its own statistics over all chunks as well)
    when that many of all its rows changed, or it was never analyzed. Autovacuum gets to the rest."""

    rows = conn.execute(_stale_sql(), [list(tables)]).fetchall()
    chosen: list[str] = []
    for table in tables:
        mine = [r for r in rows if r[0] == table]
        own = next((r for r in mine if r[2]), None)
        if own is None:  # not there (or no statistics row yet): ANALYZE it, as before
            chosen.append(table)
            continue
        _, _, _, changed, never, threshold = own
        if never or changed > threshold:
            chosen.append(table)
        else:
            chosen += [part for _, part, is_table, changed, never, threshold in mine
                       if not is_table and (never or changed > threshold)]
    return chosen


def analyze_stale(conn: psycopg.Connection, tables: Sequence[str]) -> list[str]:
    """ANALYZE what stale_statistics chooses; returns it."""

    chosen = stale_statistics(conn, tables)
    if chosen:
        conn.execute(f"analyze {', '.join(chosen)}")
    return chosen


def encode_csv(columns: list[str], frame: pd.DataFrame) -> list[bytes]:
    """The frame as COPY CSV chunks. Arrow formats it in C++ (nulls as empty fields, floats that
    round-trip exactly); zoned timestamps are written naive (Arrow formats those ~25x faster): the
    values are UTC instants and the session's time zone is UTC."""
    return csv_chunks(arrow_for_copy(columns, frame))


def arrow_for_copy(columns: list[str], frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    for i, fld in enumerate(table.schema):
        if pa.types.is_timestamp(fld.type) and fld.type.tz is not None:
            table = table.set_column(i, fld.name, table.column(i).cast(pa.timestamp("us")))
    return table


def csv_chunks(table: pa.Table) -> list[bytes]:
    options = pacsv.WriteOptions(include_header=False)
    chunks = []
    for start in range(0, table.num_rows, COPY_CHUNK_ROWS):
        buf = io.BytesIO()
        pacsv.write_csv(table.slice(start, COPY_CHUNK_ROWS), buf, options)
        chunks.append(buf.getvalue())
    return chunks


def copy_parts(cur: psycopg.Cursor, target: str, columns: list[str],
               parts: Iterable[tuple[pd.DataFrame, list[bytes] | None]]) -> None:
    """One COPY into `target` of every (frame, its chunks from `encode_csv` or None) in `parts`,
    each written as soon as `parts` yields it."""
    with cur.copy(f"copy {target} ({', '.join(columns)}) from stdin (format csv)") as copy:
        for frame, encoded in parts:
            for chunk in encoded if encoded is not None else encode_csv(columns, frame):
                copy.write(chunk)


class CsvEncoder(Encoder):
    """A group's bars as COPY CSV chunks per file, formatted where `whole` runs (a parse process):
    bytes travel back cheaply, and the loading process only writes them."""

    portable = True

    def whole(self, table: Table, frame: pd.DataFrame, bounds) -> list[list[bytes]]:
        whole = arrow_for_copy(table.column_names, frame)  # converted once, formatted per part
        return [csv_chunks(whole.slice(int(a), int(b) - int(a))) for a, b in itertools.pairwise(bounds)]

    def split(self, encoded: list[list[bytes]], bounds) -> list[list[bytes]]:
        return encoded


class PostgresTransaction(Transaction):
    binary_copy = True  # can COPY in PostgreSQL's binary format (the tick tables do: sinks/ticks_pg.py)

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.cur = conn.cursor()

    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        if params is not None:
            self.cur.execute(_pg(sql), params)
        else:
            self.cur.execute(sql)
        return self.cur.fetchall() if self.cur.description else []

    def copy(self, target: str, table: Table, frame: pd.DataFrame, encoded: object = None) -> None:
        """COPY one frame of `table`'s rows into `target` (the table or its stage): CSV here; a
        subclass may send another format (sinks/ticks_pg.py: binary)."""
        copy_parts(self.cur, target, table.column_names, [(frame, encoded)])

    def stage(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> str:
        stage = f"_stage_{table.name}_{next(_stage_ids)}"
        self.cur.execute(f"create temp table {stage} (like {table.qualified}) on commit drop")
        self.copy(stage, table, frame, encoded)
        self.cur.execute(f"analyze {stage}")
        return stage

    def append(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> None:
        self.copy(table.qualified, table, frame, encoded)

    def merge_many(self, table: Table, parts: Iterable[tuple[pd.DataFrame, object]]) -> list[MergeCounts]:
        """Optimistic, streamed: every batch goes into ONE COPY under a savepoint, written as soon
        as the producer hands it over (one statement keeps TimescaleDB's chunk insert states open
        across batches). If any row collides with a stored one, the savepoint is rolled back and
        each batch takes `merge` in order, so counts and newest-wins stay per batch."""
        seen: list[tuple[pd.DataFrame, object]] = []

        def remember():
            for part in parts:
                seen.append(part)
                yield part

        stream = remember()
        try:
            with self.conn.transaction():
                copy_parts(self.cur, table.qualified, table.column_names, stream)
            return [MergeCounts(loaded=len(frame)) for frame, _ in seen]
        except psycopg.errors.UniqueViolation:
            for _ in stream:  # take the rest of the batches too, then merge one by one
                pass
            return [self.merge(table, frame, encoded) for frame, encoded in seen]

    def try_append_new(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> bool:
        """Optimistic: COPY straight into the table under a savepoint; the primary key rejects a
        batch that overlaps stored rows (usually at its first row), and the merge takes over.
        Cheaper than probing every chunk of a hypertable first."""
        try:
            with self.conn.transaction():
                self.append(table, frame, encoded)
            return True
        except psycopg.errors.UniqueViolation:
            return False


class PostgresSink(Sink):
    dialect = "postgres"

    def __init__(self, conninfo: str, use_timescale: bool | None = None, create_extension: bool = False):
        """use_timescale: None = use TimescaleDB when the extension is in the database.
        create_extension: create it first (the `timescale` target does)."""
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.conn.execute("set timezone = 'UTC'")  # COPY writes UTC timestamps without a zone
        if create_extension:
            try:
                self.conn.execute("create extension if not exists timescaledb")
            except psycopg.Error as exc:
                raise RuntimeError(
                    f"target wants TimescaleDB but the server cannot create the extension: {exc}"
                ) from exc
        installed = bool(self.conn.execute(
            "select 1 from pg_extension where extname = 'timescaledb'").fetchall())
        self.timescale = installed if use_timescale is None else (use_timescale and installed)
        self.license = None
        if self.timescale:
            self.license = self.conn.execute("show timescaledb.license").fetchone()[0]

    def encode(self, table: Table, frame: pd.DataFrame) -> list[bytes]:
        return encode_csv(table.column_names, frame)

    def encode_parts(self, table: Table, frame: pd.DataFrame, bounds) -> list[list[bytes]]:
        return CsvEncoder().whole(table, frame, bounds)

    def encoder(self) -> CsvEncoder:
        return CsvEncoder()

    def ensure_tables(self, tables: Sequence[Table]) -> None:
        # DDL only for what is missing: least-privilege roles (`mwh roles`) may not create here (mwh_loader
        # has no CREATE on the database, mwh_transformer only reads raw), and PostgreSQL checks that first.
        have = {n for (n,) in self.conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s", (RAW_SCHEMA,)).fetchall()}
        with self.conn.transaction():
            if not self.conn.execute("select 1 from pg_namespace where nspname = %s", (RAW_SCHEMA,)).fetchone():
                self.conn.execute(f"create schema if not exists {RAW_SCHEMA}")
            for table in tables:
                if table.name not in have:
                    self.conn.execute(create_table_sql(table, "postgres", unique_key=True))
                if self.timescale and table.hypertable_time and table.name not in have:
                    chunk = os.environ.get("MWH_BARS_CHUNK_INTERVAL", table.chunk_interval or "7 days")
                    self.conn.execute(
                        "select create_hypertable(%s, by_range(%s, %s::interval), if_not_exists => true, "
                        "migrate_data => true)",
                        (table.qualified, table.hypertable_time, chunk),
                    )
                for cols in table.indexes:
                    name = f"{table.name}_{'_'.join(c.split()[0] for c in cols)}_idx"
                    if name in have:
                        continue
                    self.conn.execute(
                        f"create index if not exists {name} on {table.qualified} ({', '.join(cols)})")
                for col in table.brin_indexes:
                    name = f"{table.name}_{col}_brin"
                    if name not in have:
                        self.conn.execute(f"create index if not exists {name} on {table.qualified} using brin ({col})")

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        with self.conn.transaction():
            yield PostgresTransaction(self.conn)

    def query(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        cur = self.conn.execute(_pg(sql), params) if params is not None else self.conn.execute(sql)
        return cur.fetchall() if cur.description else []

    def refresh_statistics(self, tables: Sequence[Table]) -> None:
        analyze_stale(self.conn, [t.qualified for t in tables])

    def close(self) -> None:
        self.conn.close()
