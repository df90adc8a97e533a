"""Where each vendor format is parsed: one module per format, each returning a ``ParsedBatch``
(typed rows, the original fields, line numbers and per-row parse errors). No database code here.

``FORMATS`` maps a ``--format`` name to its parser; a module registers its parser with
``@vendor_format`` (common.py), which also gives every format the same prologue and epilogue. A new
format is one new module here plus its import below.
"""

from market_warehouse.loaders.sources import alphavantage, binance_klines, generic, yfinance_format  # noqa: F401 (register)
from market_warehouse.loaders.sources.common import FORMATS

__all__ = ["FORMATS"]
