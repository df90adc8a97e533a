"""Storage policies of the raw tick tables (market_warehouse/loaders/ticks.py, via `mwh retention`): on
TimescaleDB's full edition a compression and a retention policy per tick hypertable, compression
invisible to readers and a reload into compressed chunks still idempotent; elsewhere (plain
PostgreSQL, DuckDB) `mwh retention --apply` deletes ticks past `mwh_ticks_retention_days`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from market_warehouse import retention
from market_warehouse.cli import main
from tests.python.microstructure import capture

LINES = 8_000  # the snapshot (line 55), ~550 diffs, ~1.7k trades: every tick table gets rows
TABLES = [t.qualified for t, _, _ in retention.TICK_HYPERTABLES]


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}


def _run_compression(conn, job: int) -> None:
    """Run a compression policy now. The scheduler starts a new policy's first run at once, so it may be
    converting the same chunk: that makes this call fail with "already compressed" (seen in a full run).
    Run it again until it succeeds: chunks already converted are skipped; the state checked after counts."""
    for attempt in range(5):
        try:
            conn.execute(f"call run_job({job})")
            return
        except psycopg.errors.DataException as exc:
            if "columnstore policy failure" not in str(exc) or attempt == 4:
                raise
            time.sleep(1)


def _load(path, capsys) -> str:
    capsys.readouterr()
    assert main(["load", "ticks", str(path), "--format", "binance-ws"]) == 0
    return capsys.readouterr().out


def test_full_edition_policies_compress_and_drop_tick_chunks(timescale_target, tmp_path, capsys):
    path = capture.write(tmp_path / "BTCUSDT-capture.txt", capture.lines(LINES))
    _load(path, capsys)
    with psycopg.connect(timescale_target.conninfo(), autocommit=True) as conn:
        if not retention.is_full_edition(conn):
            pytest.skip("needs TimescaleDB's full edition (scripts/timescaledb.sh up builds it)")
        before = _counts(conn)
        assert all(before.values()), before
        book = conn.execute("select update_id, best_bid, best_ask, bid_levels from raw.book_states "
                            "order by update_id").fetchall()
        conf = {**retention.settings(), "mwh_ticks_retention_days": 3650}  # the capture is 2024-08: kept
        lines = retention.install_policies(conn, conf)
        for t in TABLES:
            assert f"{t}: compress chunks older than 7 days (segment by symbol, exchange, order by ts)" in lines
            assert f"{t}: drop chunks older than 3650 days" in lines
        jobs = dict(conn.execute(
            "select hypertable_name || ':' || proc_name, job_id from timescaledb_information.jobs "
            "where hypertable_schema = 'raw' and proc_name in ('policy_compression', 'policy_retention')"
        ).fetchall())
        for t in TABLES:
            name = t.split(".")[1]
            assert f"{name}:policy_compression" in jobs and f"{name}:policy_retention" in jobs, jobs
        for t in ("trades", "depth_updates", "book_tickers", "book_states"):
            _run_compression(conn, jobs[f"{t}:policy_compression"])
            conn.execute(f"call run_job({jobs[f'{t}:policy_retention']})")  # 3650 days: drops nothing
        compressed = conn.execute(
            "select count(*) filter (where is_compressed), count(*) from timescaledb_information.chunks "
            "where hypertable_schema = 'raw' and hypertable_name = 'depth_updates'").fetchone()
        assert compressed[0] == compressed[1] >= 1, compressed
        size = conn.execute("select before_compression_total_bytes, after_compression_total_bytes "
                            "from hypertable_compression_stats('raw.depth_updates')").fetchone()
        assert size[1] < size[0] / 2, size
        assert _counts(conn) == before
        assert conn.execute("select update_id, best_bid, best_ask, bid_levels from raw.book_states "
                            "order by update_id").fetchall() == book, "compression changed what readers see"

    # The same file again, into compressed chunks: nothing new, nothing lost.
    out = _load(path, capsys)
    assert f"loaded 0, replaced 0, duplicate {LINES}" in out, out
    with psycopg.connect(timescale_target.conninfo(), autocommit=True) as conn:
        assert _counts(conn) == before
        # A 30-day retention drops the 2024 chunks of every tick table.
        lines = retention.install_policies(conn, {**retention.settings(), "mwh_ticks_retention_days": 30})
        for (job,) in conn.execute("select job_id from timescaledb_information.jobs where hypertable_schema = "
                                   "'raw' and proc_name = 'policy_retention' and hypertable_name = any(%s)",
                                   [[t.split(".")[1] for t in TABLES]]).fetchall():
            conn.execute(f"call run_job({job})")
        assert _counts(conn) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize("target_name", ["postgres", "duckdb"])
def test_retention_apply_deletes_old_ticks_without_policies(target_name, request, tmp_path, capsys):
    target = request.getfixturevalue(f"{target_name}_target")
    path = capture.write(tmp_path / "BTCUSDT-capture.txt", capture.lines(2_000))
    _load(path, capsys)
    conf = {**retention.settings(), "mwh_ticks_retention_days": 30}
    conn = retention.connect(target)
    try:
        # 30 days after 2024-09-01 reaches back to 2024-08-02: before the capture, nothing to delete
        assert all(d.rows == 0 for d in retention.plan(conn, target.dialect, conf, datetime(2024, 9, 1, tzinfo=UTC))
                   if d.table in TABLES)
        plan = [d for d in retention.plan(conn, target.dialect, conf, datetime(2026, 1, 1, tzinfo=UTC))
                if d.table in TABLES]
        assert sorted(d.table for d in plan) == sorted(TABLES)
        assert sum(d.rows for d in plan if d.table == "raw.trades") > 0
        deleted = retention.apply(conn, target.dialect, plan)
        assert deleted == sum(d.rows for d in plan) > 0
        left = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}
        assert left == dict.fromkeys(TABLES, 0)
    finally:
        conn.close()
