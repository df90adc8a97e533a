"""Live ingestion: `mwh stream binance` (binance.py) and the `mwh load ticks` / `mwh stream` commands (cli.py)."""
