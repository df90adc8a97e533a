"""market_warehouse loaders: parse vendor data, validate it, write it to DuckDB or PostgreSQL/TimescaleDB.

Layout (one responsibility per place):
- ``sources/``  parse one format each into a typed frame (``ParsedBatch``); no database code.
  ``sources.FORMATS`` maps ``--format`` names to parsers (``@vendor_format``).
- ``validate.py`` pure row checks: what is loadable, what goes to quarantine and why (including the
  intervals, exchanges and symbols the dbt models accept).
- ``sinks/``    write frames to a database in one transaction per source (DuckDB, PostgreSQL).
- ``runs.py``   a loader run, once for every kind of load: report, audit row (``raw.loader_runs``),
  failures, quarantine frame; ``mwh runs list`` / ``mwh runs undo``.
- ``pipeline.py`` ties a file source to a sink (groups, collisions between files of one command).
- ``yfinance_load.py`` the incremental yfinance load (fetching itself is ``sources/yfinance_api.py``).
- ``schema.py`` the raw tables, declared once; ``source_yaml.py`` turns them into the dbt sources' YAML.
- ``cli.py``    the ``mwh`` command; thin.
"""

__version__ = "0.1.0"
