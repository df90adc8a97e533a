"""Comments on DuckDB tables (persist_docs, macros/materializations/persist_docs.sql): an incremental run
writes a table's comments only when they differ from the model's descriptions. A stale column comment is
put right by the next run; a run whose comments already match writes none (dbt's default wrote them all
again on every run). Observed through dbt's own SQLQuery events, on a real DuckDB file."""

from __future__ import annotations

from dbt.cli.main import dbtRunner

from market_fixtures import REPO, Warehouse, load_sample

TABLE = "marts.fct_labels_daily"
BUILD = ["build", "--select", "+fct_labels_daily", "--exclude-resource-type", "test", "unit_test"]


def _build(*extra: str) -> list[str]:
    """Run the build; the comment statements dbt sent for fct_labels_daily."""
    sent: list[str] = []

    def collect(event) -> None:
        if event.info.name == "SQLQuery" and "comment on" in event.data.sql and "fct_labels_daily" in event.data.sql:
            sent.append(event.data.sql)

    result = dbtRunner(callbacks=[collect]).invoke(["--no-use-colors", *BUILD, *extra, "--project-dir", str(REPO)])
    assert result.success, result.exception
    return sent


def _comments(wh: Warehouse) -> dict[str, str]:
    schema, name = TABLE.split(".")
    table = wh.query(f"select comment from duckdb_tables() where schema_name = '{schema}' and table_name = '{name}'")
    columns = wh.query(f"select column_name, comment from duckdb_columns() where schema_name = '{schema}' "
                       f"and table_name = '{name}'")
    return {"": table["comment"][0], **dict(zip(columns["column_name"], columns["comment"], strict=True))}


def test_incremental_run_writes_only_changed_comments(duckdb_target):
    wh = Warehouse("duckdb")
    wh.create_raw()
    wh.upsert(*load_sample(symbols=["AAPL"], start="2020-01-01", end="2021-01-01", crypto=False))
    assert _build("--full-refresh")  # a new table: every comment written
    documented = _comments(wh)
    assert documented[""] and documented["symbol"]

    wh.execute(f"comment on column {TABLE}.symbol is 'stale'")
    assert _build(), "a stale column comment must be written again"
    assert _comments(wh) == documented

    assert _build() == [], "comments that match the model's descriptions are not written again"
    assert _comments(wh) == documented
