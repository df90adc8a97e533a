"""`mwh_ml_source` must see a raw ML table that exists, whatever dbt's relation cache holds.

make test once built `staging.stg_ml__signals` as the empty stand-in although `raw.ml_signals` held a row.
The cause is a race in dbt-adapters' relation cache: no model lives in `raw`, so dbt does not list it
when the run starts; the first `adapter.get_relation` on `raw` lists it and adds its relations to the
cache one by one, and the first `add` already marks the schema as cached. A second thread asking at that
moment gets the relations added so far, so the table it looks for may be missing. This test forces that
interleaving (two ML staging models on dbt's two threads, with dbt's cache paused after its first `raw`
relation until the other thread has looked): the macro must ask the database, not the cache."""

from __future__ import annotations

import threading

import pytest

from market_warehouse.dbt import run_dbt
from market_warehouse.loaders.sinks import open_sink

SIGNAL = {"strategy": "s", "symbol": "AAPL", "signal_ts": "2021-03-09T16:00:00-05:00", "signal_type": "BUY",
          "entry_price": 121.085, "target_price": 123.5, "stop_price": 115.0}


@pytest.fixture
def paused_raw_listing(monkeypatch):
    """Pause dbt's cache right after the first `raw` relation is added (the schema then counts as cached)
    until stg_ml__signals has looked `raw` up; stg_ml__signals waits for that moment."""
    from dbt.adapters.base.impl import BaseAdapter
    from dbt.adapters.cache import RelationsCache

    first_added, signals_looked = threading.Event(), threading.Event()
    original_add, original_list = RelationsCache.add, BaseAdapter.list_relations

    def add(self, relation):
        original_add(self, relation)
        if (str(relation.schema).lower() == "raw" and str(relation.identifier).lower() != "ml_signals"
                and not first_added.is_set()):
            first_added.set()
            signals_looked.wait(30)

    def list_relations(self, database, schema):
        if str(schema).lower() == "raw" and "stg_ml__signals" in self.nice_connection_name():
            first_added.wait(30)
            try:
                return original_list(self, database, schema)
            finally:
                signals_looked.set()
        return original_list(self, database, schema)

    monkeypatch.setattr(RelationsCache, "add", add)
    monkeypatch.setattr(BaseAdapter, "list_relations", list_relations)
    return first_added, signals_looked


@pytest.mark.parametrize("target_name", ["duckdb", "timescale"])
def test_ml_source_sees_existing_table_during_cache_fill(target_name, request, paused_raw_listing):
    from market_warehouse.ml.db import open_ml_sink
    from market_warehouse.ml.records import write_records

    target = request.getfixturevalue(f"{target_name}_target")
    with open_ml_sink(target) as sink:
        assert write_records(sink, "signals", [SIGNAL], strict=True).loaded == 1

    # Two ML staging models with no dependency between them: dbt compiles them at once on its two threads.
    res = run_dbt(["run", "--select", "stg_ml__predictions", "stg_ml__signals"], target, quiet=True)
    assert res.success, res.exception
    with open_sink(target, tables=()) as sink:
        assert sink.query("select count(*) from staging.stg_ml__signals") == [(1,)]
        assert sink.query("select count(*) from staging.stg_ml__predictions") == [(0,)]
