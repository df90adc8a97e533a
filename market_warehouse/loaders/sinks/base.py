"""What every sink does the same way: the merge that makes loads idempotent and counts what changed.

A batch is first staged (COPY on PostgreSQL, Arrow on DuckDB: the only dialect-specific step),
then merged into the target table in the same transaction:

- rows whose key is new are inserted                   -> ``loaded``
- rows whose key exists with other values replace it   -> ``replaced`` (the newest load wins)
- rows identical to what is stored are left alone      -> ``duplicate``

Tables with a history (``schema.history_of``: bars, corporate actions) keep the rows a merge replaces
in ``raw.replaced_<table>``, in the same transaction, for ``mwh runs undo``.

When nothing in the table overlaps the batch (first load of a range), the sink writes straight into
the table instead: same result, half the I/O.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

from market_warehouse.loaders.schema import SEED_STATE, TYPES, Table, history_of, stored_seeds_checksum


@dataclass
class MergeCounts:
    loaded: int = 0
    replaced: int = 0
    duplicate: int = 0


def create_table_sql(table: Table, dialect: str, unique_key: bool) -> str:
    cols = ",\n    ".join(
        f"{c.name} {TYPES[c.type][dialect]}{'' if c.nullable else ' not null'}" for c in table.columns
    )
    key = f",\n    primary key ({', '.join(table.key)})" if unique_key else ""
    return f"create table if not exists {table.qualified} (\n    {cols}{key}\n)"


def _key_match(table: Table, left: str, right: str) -> str:
    return " and ".join(f"{left}.{k} = {right}.{k}" for k in table.key)


def _differs(table: Table, left: str, right: str) -> str:
    cols = table.compare_columns
    if not cols:
        return "false"
    return "(" + " or ".join(f"{left}.{c} is distinct from {right}.{c}" for c in cols) + ")"


def merge_count_sql(table: Table, stage: str) -> str:
    return f"""
        select
            coalesce(sum(case when t.{table.key[0]} is null then 1 else 0 end), 0),
            coalesce(sum(case when t.{table.key[0]} is not null and {_differs(table, 's', 't')}
                         then 1 else 0 end), 0),
            coalesce(sum(case when t.{table.key[0]} is not null and not {_differs(table, 's', 't')}
                         then 1 else 0 end), 0)
        from {stage} as s
        left join {table.qualified} as t on {_key_match(table, 's', 't')}
    """


def merge_delete_sql(table: Table, stage: str) -> str:
    return f"""
        delete from {table.qualified} as t
        using {stage} as s
        where {_key_match(table, 's', 't')} and {_differs(table, 's', 't')}
    """


def merge_history_sql(table: Table, history: Table, stage: str) -> str:
    """Keep the stored rows the batch is about to replace (not those of its own run)."""
    cols = ", ".join(table.column_names)
    tcols = ", ".join(f"t.{c}" for c in table.column_names)
    return f"""
        insert into {history.qualified} ({cols}, replaced_by_run_id, replaced_at)
        select {tcols}, s.run_id, s.loaded_at
        from {table.qualified} as t
        join {stage} as s on {_key_match(table, 's', 't')}
        where {_differs(table, 's', 't')} and t.run_id <> s.run_id
    """


def merge_insert_sql(table: Table, stage: str) -> str:
    cols = ", ".join(table.column_names)
    scols = ", ".join(f"s.{c}" for c in table.column_names)
    return f"""
        insert into {table.qualified} ({cols})
        select {scols} from {stage} as s
        where not exists (select 1 from {table.qualified} as t where {_key_match(table, 's', 't')})
    """


def overlap_sql(table: Table, text_array: str) -> str | None:
    """A cheap probe: does the table hold any row in the batch's symbols and time range?
    Only for time-series tables keyed by symbol; others always take the merge path."""
    if not table.hypertable_time or "symbol" not in table.key:
        return None
    t = table.hypertable_time
    return (f"select 1 from {table.qualified} where symbol = any(cast(? as {text_array})) "
            f"and {t} >= ? and {t} <= ? limit 1")


class Transaction(ABC):
    """One source's writes: all of them commit together or none do."""

    text_array = "text[]"  # the dialect's array-of-text type, for list parameters

    @abstractmethod
    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]: ...

    @abstractmethod
    def stage(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> str:
        """Write the frame into a temporary table shaped like `table`; return its name."""

    @abstractmethod
    def append(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> None:
        """Bulk-append the frame to the table (no key checks). `encoded`: the frame as the
        sink's `encode` prepared it, when the caller did that ahead of time."""

    def _has_overlap(self, table: Table, frame: pd.DataFrame) -> bool:
        sql = overlap_sql(table, self.text_array)
        if sql is None:
            return True
        t = frame[table.hypertable_time]
        symbols = sorted(frame["symbol"].unique().tolist())
        return bool(self.execute(sql, [symbols, t.min().to_pydatetime(), t.max().to_pydatetime()]))

    def try_append_new(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> bool:
        """The fast path: append when no row of the batch can collide with a stored one.
        Returns False (having written nothing) when the merge is needed."""
        if self._has_overlap(table, frame):
            return False
        self.append(table, frame, encoded)
        return True

    def merge_many(self, table: Table, parts: Iterable[tuple[pd.DataFrame, object]]) -> list[MergeCounts]:
        """Merge several batches (frame, encoded) in order; one count per batch. `parts` may be a
        generator that is still producing: sinks that stream consume it as they write."""
        return [self.merge(table, frame, encoded) for frame, encoded in parts]

    def merge(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> MergeCounts:
        """Upsert `frame` (unique on table.key, all columns present) into `table`."""
        if frame.empty:
            return MergeCounts()
        frame = frame[table.column_names]
        if self.try_append_new(table, frame, encoded):
            return MergeCounts(loaded=len(frame))
        stage = self.stage(table, frame, encoded)
        new, replaced, duplicate = self.execute(merge_count_sql(table, stage))[0]
        if replaced:
            history = history_of(table)
            if history is not None:
                self.execute(merge_history_sql(table, history, stage))
            self.execute(merge_delete_sql(table, stage))
        if new or replaced:
            self.execute(merge_insert_sql(table, stage))
        self.execute(f"drop table {stage}")
        return MergeCounts(loaded=int(new), replaced=int(replaced), duplicate=int(duplicate))


class Sink(ABC):
    """A warehouse the loaders write to."""

    dialect: str

    @abstractmethod
    def ensure_tables(self, tables: Sequence[Table]) -> None: ...

    # Which seed files the warehouse's `reference` tables were last built from (mwh build).
    SEED_STATE = SEED_STATE

    def stored_seeds_checksum(self) -> str | None:
        return stored_seeds_checksum(self.query)

    def store_seeds_checksum(self, checksum: str) -> None:
        try:  # `mwh roles` gives it to mwh_transformer, which may not create tables in raw
            exists = self.query(f"select count(*) from {self.SEED_STATE}") is not None
        except Exception:  # noqa: BLE001 - not created yet (autocommit connections: nothing to undo)
            exists = False
        with self.transaction() as tx:
            if not exists:
                tx.execute(f"create table if not exists {self.SEED_STATE} (checksum text not null)")
            tx.execute(f"delete from {self.SEED_STATE}")
            tx.execute(f"insert into {self.SEED_STATE} values (?)", [checksum])

    def refresh_statistics(self, tables: Sequence[Table]) -> None:
        """Bring the planner's statistics up to date (before a build reads freshly loaded rows)."""

    def encode(self, table: Table, frame: pd.DataFrame) -> object:
        """Turn a frame into what this sink's bulk path sends (CPU only, thread-safe), so callers
        can do it ahead of the transaction. None: nothing to prepare."""
        return None

    def encode_parts(self, table: Table, frame: pd.DataFrame, bounds: Sequence[int]) -> list[object]:
        """`encode` of each slice frame[bounds[k]:bounds[k + 1]] (a group of files encoded at once;
        sinks override it to convert the whole frame once)."""
        return [self.encode(table, frame.iloc[a:b]) for a, b in itertools.pairwise(bounds)]

    def encoder(self) -> Encoder:
        """How a group of files' bars is encoded (`Encoder`). Sinks whose encoding needs no
        connection return a portable one, which a parse process can run."""
        return Encoder(self)

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Transaction]: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence | None = None) -> list[tuple]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Encoder:
    """A group of files' bars encoded in two steps: `whole` once for the group (the CPU work,
    ahead of the transaction), then `split` into each file's part, in the loading process.
    `portable`: picklable and free of any connection, so `whole` may run in a parse process and
    its answer travel back (pipeline.py). This default is not: it runs the sink's `encode_parts`."""

    portable = False

    def __init__(self, sink: Sink | None = None):
        self.sink = sink

    def whole(self, table: Table, frame: pd.DataFrame, bounds: Sequence[int]) -> object:
        return self.sink.encode_parts(table, frame, bounds)

    def split(self, encoded: object, bounds: Sequence[int]) -> list[object]:
        return encoded
