"""Where rows are written: one module per database. ``open_sink`` picks one from a profile target."""

from __future__ import annotations

from market_warehouse.config import Target, load_target
from market_warehouse.loaders.schema import MARKET_TABLES
from market_warehouse.loaders.sinks.base import MergeCounts, Sink, Transaction
from market_warehouse.loaders.sinks.duckdb_sink import DuckDBSink
from market_warehouse.loaders.sinks.postgres_sink import PostgresSink

__all__ = ["DuckDBSink", "MergeCounts", "PostgresSink", "Sink", "Transaction", "open_sink"]


def open_sink(target: Target | str | None = None, tables=MARKET_TABLES) -> Sink:
    """Connect to a profile target (name, Target, or the default) and make sure `tables` exist."""
    if not isinstance(target, Target):
        target = load_target(target)
    if target.type == "duckdb":
        sink: Sink = DuckDBSink(target.path, config=target.duckdb_config())
    elif target.type == "spark":  # pyspark is optional (`make spark`): imported only here
        from market_warehouse.loaders.sinks.spark_sink import SparkSink

        sink = SparkSink.from_target(target)
    else:
        sink = PostgresSink(target.conninfo(), create_extension=(target.name == "timescale"))
    sink.ensure_tables(tables)
    return sink
