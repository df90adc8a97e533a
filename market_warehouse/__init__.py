"""market_warehouse: the Python side of the warehouse. Data flows one way: sources parse, the pipeline
writes, dbt transforms.

Layout (one responsibility per place):
- ``loaders/``  land raw data:
  - ``loaders/sources/``  parse one format each into a typed frame (``ParsedBatch``); no database code.
    ``sources.FORMATS`` maps ``--format`` names to parsers (``@vendor_format``).
  - ``loaders/validate.py`` pure row checks: what is loadable, what goes to quarantine and why.
  - ``loaders/sinks/``    write frames to a database in one transaction per source (DuckDB, PostgreSQL).
  - ``loaders/pipeline.py`` ties a file source to a sink (groups, collisions between files of one command).
  - ``loaders/yfinance_load.py`` the incremental yfinance load (fetching is ``loaders/sources/yfinance_api.py``).
  - ``loaders/schema.py`` the raw tables, declared once; ``source_yaml.py`` turns them into the dbt sources' YAML.
- ``ml/``       the ML lifecycle's records: registry, training runs, predictions, signals, decisions, queue.
- ``runs.py``   a loader run, once for every kind of load: report, audit row (``raw.loader_runs``),
  failures, quarantine frame; ``mwh runs list`` / ``mwh runs undo``.
- ``dbt.py``    runs dbt (whole or selected builds); ``jobs.py`` the unattended ``mwh run``.
- ``read.py``   the read API for quants (DataFrames); ``status.py`` health; ``docs_site.py`` the catalog.
- ``cli.py``    the ``mwh`` command; thin.

Why not the settled top-level ``loaders/``: the package also holds the registry, queue, dbt runner, read
API and CLI, so it is named for the project (issue #8); the loaders are ``market_warehouse/loaders/``.
"""

__version__ = "0.1.0"
