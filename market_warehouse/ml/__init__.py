"""The ML and trading lifecycle: model registry, training runs, predictions, signals, agent decisions and
the retrain queue, written to the same `raw` schema as market data.

Layout (one responsibility per module):
- ``schema.py``    the raw tables (market_warehouse.loaders.schema.Table), one definition for DDL on every target.
- ``coerce.py``    records as read (dicts, strings) -> typed frames; why a field did not parse. Pure.
- ``validate.py``  the rules each record kind must meet (ranges, enums, sides of a stop). Pure.
- ``files.py``     JSONL and CSV readers: rows as read plus their line numbers.
- ``records.py``   the write path: validate, merge, quarantine, audit row (market_warehouse/runs.py), one
                   transaction per batch.
- ``registry_rows.py`` the registry's rows as every write path stores them (below records and registry).
- ``artifacts.py`` content-addressed artifact store (local directory, or any fsspec URL).
- ``registry.py``  register model versions, activate one atomically, update metrics.
- ``queue.py``     the retrain queue: enqueue once, claim safely, complete, fail, leases that expire.
- ``api.py``       the Python API ML code writes through (a thin facade over the modules above).
- ``cli.py``       `mwh ml ...` and `mwh retrain ...`; thin.

    from market_warehouse.ml import api
    with api.connect() as wh:
        api.record_predictions(wh, rows)    # rows: list of dicts or a DataFrame
"""
