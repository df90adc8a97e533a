"""Opening a warehouse for the ML tables: the market sinks, plus the ML tables and their guards."""

from __future__ import annotations

from market_warehouse.config import Target
from market_warehouse.loaders.schema import MARKET_TABLES
from market_warehouse.loaders.sinks import Sink, open_sink
from market_warehouse.ml.schema import ML_TABLES, POSTGRES_EXTRA_DDL, RETRAIN_QUEUE

ALL_TABLES = (*MARKET_TABLES, *ML_TABLES)


def ensure_ml_tables(sink: Sink) -> None:
    """Create the ML tables (and, on PostgreSQL, the partial unique indexes) if they do not exist."""
    sink.ensure_tables(ALL_TABLES)
    if sink.dialect == "postgres":
        for ddl in POSTGRES_EXTRA_DDL:
            sink.query(ddl)


def open_ml_sink(target: Target | str | None = None) -> Sink:
    sink = open_sink(target, tables=ALL_TABLES)
    if sink.dialect == "postgres":
        for ddl in POSTGRES_EXTRA_DDL:
            sink.query(ddl)
    return sink


__all__ = ["ALL_TABLES", "RETRAIN_QUEUE", "ensure_ml_tables", "open_ml_sink"]
