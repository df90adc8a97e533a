"""Spark sink: the raw tables as Spark tables (Parquet), written through a local or cluster SparkSession.

Table format. Delta and Iceberg are where MERGE and multi-statement transactions live on Spark, but
their Spark runtimes are JVM jars that Spark fetches from Maven at start-up (`spark.jars.packages`);
no PyPI package carries them (`delta-spark` is the Python API only), so a machine that reaches PyPI
and nothing else cannot have them. The tables are therefore Spark's built-in Parquet tables, with the
closest guarantees (docs/spark.md):

- **The partition is the unit of replacement.** `raw.bars` is partitioned by (interval, symbol) and
  `raw.corporate_actions` by symbol. A merge (newest wins) computes the full new content of the
  partitions a batch touches and replaces exactly those partitions (dynamic partition overwrite):
  no row-level DELETE or MERGE is needed, and a rerun of the same batch writes the same content
  (idempotent: counted `duplicate`).
- **A transaction writes nothing until it commits.** Merges and appends are computed (counts included)
  and held as checkpointed DataFrames; an error inside the `with sink.transaction()` block leaves
  every table as it was. The commit writes the merged partitions, then the replaced-row history, the
  quarantine and, last, the audit rows in `raw.loader_runs`: a process killed during the commit leaves
  no audit row, the load shows as not done, and a rerun completes it. What Parquet cannot give is a
  commit that is atomic across partitions and tables (Delta/Iceberg would).
- `mwh runs undo` needs row-level DELETE and is refused on Spark with one line.

The session: the profile's `server_side_parameters` (the same settings dbt-spark uses), so the loaders
and an in-process dbt run share one SparkSession, one warehouse folder and one metastore.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import unquote

import pandas as pd

from market_warehouse.config import ConfigError, Target
from market_warehouse.loaders.schema import RAW_SCHEMA, Table, history_of
from market_warehouse.loaders.sinks.base import MergeCounts, Sink, Transaction, _differs, _key_match

_ids = itertools.count()

# Partition columns per raw table (the merge unit); tables not listed are unpartitioned, append-only.
PARTITIONS: dict[str, tuple[str, ...]] = {
    "bars": ("interval", "symbol"),
    "corporate_actions": ("symbol",),
}

SPARK_TYPES = {
    "timestamp": "timestamp", "date": "date", "text": "string", "double": "double",
    "bigint": "bigint", "integer": "int", "boolean": "boolean", "json": "string",
}


class SparkUnsupported(ConfigError):
    """An operation the Parquet tables cannot do (row-level DELETE/UPDATE): one line from `mwh`."""


def spark_conf(target: Target | str | None = None) -> dict[str, str]:
    """The rendered `server_side_parameters` of a spark target of the profile."""
    import yaml

    from market_warehouse import config

    name = target.name if isinstance(target, Target) else target
    path = config.profiles_dir() / "profiles.yml"
    doc = yaml.safe_load(path.read_text()) or {}
    profile = doc.get(config.PROFILE_NAME) or {}
    env = config.jinja2.Environment(undefined=config.jinja2.StrictUndefined)
    env.globals["env_var"] = config._env_var
    env.filters["as_number"] = config._as_number
    name = name or config._render(profile.get("target", "duckdb"), env)
    out = config._render((profile.get("outputs") or {}).get(name) or {}, env)
    if out.get("type") != "spark":
        raise ConfigError(f"{path}: target {name!r} is not a spark target")
    if out.get("method", "session") != "session":
        raise ConfigError(f"{path}: target {name!r}: the loaders write to Spark only through the session "
                          f"method (method: {out.get('method')}); load a session target or hand Parquet "
                          f"over (docs/spark.md)")
    return {str(k): str(v) for k, v in (out.get("server_side_parameters") or {}).items()}


def spark_session(conf: dict[str, str]):
    """getOrCreate a Hive-enabled SparkSession with `conf` (what dbt-spark's session method does)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("the spark target needs pyspark and dbt-spark: run `make spark`") from exc
    builder = SparkSession.builder.enableHiveSupport()
    settings = {"spark.sql.ansi.enabled": "false",  # as dbt-spark's session method
                "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.sources.partitionOverwriteMode": "dynamic",
                "spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false", **conf}
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _struct(table: Table):
    from pyspark.sql.types import StructType, _parse_datatype_string

    return StructType.fromJson({"type": "struct", "fields": [
        {"name": c.name, "type": _parse_datatype_string(SPARK_TYPES[c.type]).jsonValue(),
         "nullable": True, "metadata": {}} for c in table.columns]})


def _literal(value) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkTransaction(Transaction):
    """Computes every write at once, writes them at commit (see the module docstring)."""

    text_array = "array<string>"

    def __init__(self, sink: SparkSink):
        self.sink = sink
        self.spark = sink.spark
        self.pending: dict[str, object] = {}      # merged table -> DataFrame of its touched partitions
        self.touched: dict[str, set[tuple]] = {}  # merged table -> partition values in `pending`
        self.appends: dict[str, list] = {}        # appended table -> DataFrames
        self.tables: dict[str, Table] = {}
        self._stored: dict[str, set[tuple]] = {}  # partitions stored when the transaction began

    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        head = sql.lstrip().split(None, 1)[0].lower()
        if head not in ("select", "with", "show", "describe"):
            raise SparkUnsupported(f"the Spark target's Parquet tables have no row-level {head.upper()} "
                                   f"(needs Delta or Iceberg; docs/spark.md)")
        return self.sink.query(sql, params)

    def _frame(self, table: Table, frame: pd.DataFrame):
        return self.spark.createDataFrame(frame[table.column_names], schema=_struct(table))

    def stage(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> str:
        name = f"_stage_{table.name}_{next(_ids)}"
        self._frame(table, frame).createOrReplaceTempView(name)
        return name

    def append(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> None:
        if frame.empty:
            return
        self.tables[table.name] = table
        self.appends.setdefault(table.name, []).append(self._frame(table, frame))

    def _partition_filter(self, parts: tuple[str, ...], values: set[tuple]) -> str:
        if not parts:
            return "true"
        return "(" + " or ".join(
            "(" + " and ".join(f"`{p}` = {_literal(v)}" for p, v in zip(parts, vals)) + ")"
            for vals in sorted(values)) + ")"

    def merge(self, table: Table, frame: pd.DataFrame, encoded: object = None) -> MergeCounts:
        """Newest wins, as base.Transaction.merge counts it; the result replaces whole partitions."""
        if frame.empty:
            return MergeCounts()
        self.tables[table.name] = table
        parts = PARTITIONS.get(table.name, ())
        n = next(_ids)
        s_name, t_name = f"_s_{table.name}_{n}", f"_t_{table.name}_{n}"
        self._frame(table, frame).createOrReplaceTempView(s_name)
        affected = ({tuple(r) for r in frame[list(parts)].drop_duplicates().itertuples(index=False)}
                    if parts else {()})
        touched = self.touched.setdefault(table.name, set())
        pending = self.pending.get(table.name)
        if table.name not in self._stored:
            self._stored[table.name] = self.sink.stored_partitions(table) if parts else set()
        if parts and not affected & (touched | self._stored[table.name]):
            # Nothing stored or pending where this batch goes (a first load): every row is new.
            fresh = self.spark.table(s_name)
            self.pending[table.name] = fresh if pending is None else pending.unionByName(fresh)
            touched |= affected
            return MergeCounts(loaded=len(frame))
        stored = self.spark.table(table.qualified).select(*table.column_names)
        current = stored.where(self._partition_filter(parts, affected - touched)) if affected - touched else None
        if pending is not None and affected & touched:
            mine = pending.where(self._partition_filter(parts, affected & touched))
            current = mine if current is None else current.unionByName(mine)
        if current is None:
            current = stored.limit(0)
        current.createOrReplaceTempView(t_name)
        key0 = table.key[0]
        new, replaced, duplicate = self.sink.query(f"""
            select
                coalesce(sum(case when t.{key0} is null then 1 else 0 end), 0),
                coalesce(sum(case when t.{key0} is not null and {_differs(table, 's', 't')} then 1 else 0 end), 0),
                coalesce(sum(case when t.{key0} is not null and not {_differs(table, 's', 't')}
                             then 1 else 0 end), 0)
            from {s_name} as s left join {t_name} as t on {_key_match(table, 's', 't')}""")[0]
        cols = ", ".join(f"x.{c}" for c in table.column_names)
        merged = self.spark.sql(f"""
            select {cols} from {t_name} as x
            where not exists (select 1 from {s_name} as s
                              where {_key_match(table, 's', 'x')} and {_differs(table, 's', 'x')})
            union all
            select {cols} from {s_name} as x
            where not exists (select 1 from {t_name} as t
                              where {_key_match(table, 'x', 't')} and not {_differs(table, 'x', 't')})""")
        history = history_of(table)
        if replaced and history is not None:
            tcols = ", ".join(f"t.{c}" for c in table.column_names)
            replaced_rows = self.spark.sql(f"""
                select {tcols}, s.run_id as replaced_by_run_id, s.loaded_at as replaced_at
                from {t_name} as t join {s_name} as s on {_key_match(table, 's', 't')}
                where {_differs(table, 's', 't')} and t.run_id <> s.run_id""").localCheckpoint()
            self.tables[history.name] = history
            self.appends.setdefault(history.name, []).append(replaced_rows)
        if pending is not None:
            rest = pending.where(f"not {self._partition_filter(parts, affected)}") if parts else None
            merged = merged if rest is None else rest.unionByName(merged)
        # Materialise now: the commit overwrites the partitions this result was read from.
        self.pending[table.name] = merged.localCheckpoint()
        touched |= affected
        for view in (s_name, t_name):
            self.spark.catalog.dropTempView(view)
        return MergeCounts(loaded=int(new), replaced=int(replaced), duplicate=int(duplicate))

    def _write(self, table: Table, frame, overwrite: bool) -> None:
        order = self.spark.table(table.qualified).columns  # partition columns last
        frame.select(*order).write.insertInto(table.qualified, overwrite=overwrite)

    def commit(self) -> None:
        for name, frame in self.pending.items():
            # Partitioned: dynamic overwrite, only the partitions present; else the whole table.
            self._write(self.tables[name], frame, overwrite=True)
        audit = [n for n in self.appends if n == "loader_runs"]
        for name in [n for n in self.appends if n not in audit] + audit:
            frames = self.appends[name]
            out = frames[0]
            for f in frames[1:]:
                out = out.unionByName(f)
            self._write(self.tables[name], out, overwrite=False)


class SparkSink(Sink):
    dialect = "spark"

    def __init__(self, conf: dict[str, str] | None = None):
        self.spark = spark_session(conf or {})

    @classmethod
    def from_target(cls, target: Target | str | None = None) -> SparkSink:
        return cls(spark_conf(target))

    def ensure_tables(self, tables: Sequence[Table]) -> None:
        self.spark.sql(f"create database if not exists {RAW_SCHEMA}")
        for table in tables:
            cols = ", ".join(f"`{c.name}` {SPARK_TYPES[c.type]}" for c in table.columns)
            parts = PARTITIONS.get(table.name)
            by = f" partitioned by ({', '.join(f'`{p}`' for p in parts)})" if parts else ""
            self.spark.sql(f"create table if not exists {table.qualified} ({cols}) using parquet{by}")

    def stored_partitions(self, table: Table) -> set[tuple]:
        """The table's partitions as the metastore lists them (no data is read)."""
        parts = PARTITIONS.get(table.name, ())
        out = set()
        for (spec,) in self.query(f"show partitions {table.qualified}"):
            values = dict(kv.split("=", 1) for kv in spec.split("/"))
            out.add(tuple(unquote(values[p]) for p in parts))
        return out

    @contextmanager
    def transaction(self) -> Iterator[SparkTransaction]:
        tx = SparkTransaction(self)
        yield tx  # an exception here leaves every table untouched: nothing was written yet
        tx.commit()

    def query(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        frame = self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)
        return [tuple(r) for r in frame.collect()]

    def store_seeds_checksum(self, checksum: str) -> None:
        self.spark.sql(f"create or replace table {self.SEED_STATE} (checksum string) using parquet")
        self.spark.sql(f"insert into {self.SEED_STATE} values ({_literal(checksum)})")

    def close(self) -> None:
        """The session stays up for an in-process dbt run (same metastore); stop_spark() ends it."""


def stop_spark() -> None:
    """Stop this process's SparkSession (its embedded metastore is then free for another process)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None:
        spark.stop()
