"""An incremental model whose rows changed by more than autovacuum's threshold (the table's storage parameters,
else the server's settings) is analyzed by the build's post-hook (macros/cross_db.sql, mwh_analyze_built_table),
also when this build's own session wrote nothing.

That is the case at scale: under the profile's `autocommit: true` the server flushes a statement's write
counters once it ran a second or more, so the rows a build just merged show in `n_mod_since_analyze`, not in
the session's `pg_stat_xact_*` counts. At 10M 1-minute bars on TimescaleDB the old rule (this session's
unflushed writes alone) never fired, and two rollup tests were planned without statistics until the disk
was full. Here the changed rows are written and flushed by another session, which puts the statistics in
the same state without needing a build that runs for seconds; the build that follows writes no row."""

from __future__ import annotations

import time

import pytest

from market_fixtures import AAPL_MSFT_DAILY, Warehouse, dbt, load_through_pipeline

pytestmark = pytest.mark.postgres

MODEL = "staging.stg_market__bars"
SELECT = ["--select", "stg_market__bars", "--exclude-resource-type", "test", "unit_test"]


def _stats(wh: Warehouse) -> tuple:
    """last_analyze, n_mod_since_analyze, n_live_tup of the model, read on a connection of its own."""
    row = wh.query("select last_analyze, n_mod_since_analyze, n_live_tup from pg_stat_user_tables"
                   f" where relid = '{MODEL}'::regclass")
    return tuple(row.iloc[0])


def test_changed_rows_flushed_before_the_post_hook_still_analyze(postgres_target):
    wh = Warehouse("postgres")
    load_through_pipeline(postgres_target, AAPL_MSFT_DAILY, "alphavantage")
    dbt("build", *SELECT, "--full-refresh")
    wh.execute(f"alter table {MODEL} set (autovacuum_enabled = false)")  # no autovacuum behind the test's back
    analyzed = _stats(wh)[0]
    assert analyzed is not None, "a full refresh analyzes the model"
    rows = int(wh.query(f"select count(*) from {MODEL}").iloc[0, 0])
    assert rows > 1000

    _change_every_row(wh, rows)
    dbt("build", *SELECT)  # nothing loaded since: this session writes no row
    after, pending, _ = _stats(wh)
    assert after is not None and after > analyzed and pending == 0, (analyzed, after, pending)

    # the table's own autovacuum_analyze_scale_factor (a storage parameter) outranks the server's 0.1:
    # at 2, every row changed once is not enough
    wh.execute(f"alter table {MODEL} set (autovacuum_analyze_scale_factor = 2)")
    _change_every_row(wh, rows)
    dbt("build", *SELECT)
    unchanged, pending, _ = _stats(wh)
    assert unchanged == after and pending >= rows, (after, unchanged, pending)


def _change_every_row(wh: Warehouse, rows: int) -> None:
    """Every row of the model changed, by a session that ends (its counters flushed at exit)."""
    before = _stats(wh)[1]
    wh.execute(f"update {MODEL} set vwap = vwap")
    for _ in range(50):
        if _stats(wh)[1] >= before + rows:
            break
        time.sleep(0.1)
    assert _stats(wh)[1] >= before + rows, "the changed rows are counted by the server"
