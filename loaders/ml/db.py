"""Opening a warehouse for the ML tables: the market sinks, plus the ML tables and their guards."""

from __future__ import annotations

from loaders.config import Target
from loaders.ml.schema import ML_TABLES, POSTGRES_EXTRA_DDL, RETRAIN_QUEUE
from loaders.schema import MARKET_TABLES
from loaders.sinks import Sink, open_sink

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
