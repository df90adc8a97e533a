"""Dagster orchestration of the warehouse (optional: `make orchestration` installs it; docs/orchestration.md).

    .venv/bin/dagster dev -m orchestration.definitions

- `orchestration.loaders`: the loaders as upstream assets, one per source type of the sources file
  (`loaders/file_drops`, `loaders/yfinance`, `loaders/ml_records`), the same code as `mwh run`
  (market_warehouse.jobs: the ledger, incremental yfinance, the audit rows, the run lock).
- `orchestration.dbt_assets`: the dbt project's models, seeds and snapshots as assets from its manifest
  (dagster-dbt), their tests as asset checks; the raw tables they read are mapped to the loader assets.
- `orchestration.automation`: daily schedules after each exchange's close (the calendars of
  seeds/trading_sessions.csv), an intraday schedule for crypto drops, and the retrain-queue sensor.
- `orchestration.definitions`: `defs`, what `dagster dev` loads.
"""
