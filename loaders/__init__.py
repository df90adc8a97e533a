"""market_warehouse loaders: parse vendor data, validate it, write it to DuckDB or PostgreSQL/TimescaleDB.

Layout (one responsibility per place):
- ``sources/``  parse one format each into a typed frame (``ParsedBatch``); no database code.
- ``validate.py`` pure row checks: what is loadable, what goes to quarantine and why.
- ``sinks/``    write frames to a database in one transaction per source (DuckDB, PostgreSQL).
- ``pipeline.py`` ties a source to a sink and writes the audit row (``raw.loader_runs``).
- ``cli.py``    the ``mwh`` command; thin.
"""

__version__ = "0.1.0"
