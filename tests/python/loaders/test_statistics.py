"""Statistics before a build on PostgreSQL: ANALYZE what a load made stale, and only that.

`mwh build` (and `mwh run`) analyze the raw market tables before dbt reads them, so a build right after
a load plans on fresh estimates. Analyzing every raw table on every build re-sampled all chunks of a
5M-bar hypertable (about 20 s a build at 5M) after a load of one session. stale_statistics chooses, by
autovacuum's own rule (more rows changed since the last analyze than its threshold + scale factor x rows,
50 + 10% by default, from the table's storage parameters or the server's settings; or never analyzed),
the tables, or of a hypertable the chunks, that need it. Real files, the real loader, the real server."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.schema import MARKET_TABLES
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sinks.postgres_sink import analyze_stale, stale_statistics

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "alphavantage"
TABLES = [t.qualified for t in MARKET_TABLES]


def _load(target, paths) -> None:
    with open_sink(target) as sink:
        reports = load_files(sink, [str(p) for p in paths], "alphavantage")
    assert all(r.status == "success" for r in reports), [r.line() for r in reports]


@pytest.mark.parametrize("target_name", ["timescale", "postgres"])
def test_only_stale_statistics_are_refreshed(request, target_name, tmp_path):
    target = request.getfixturevalue(f"{target_name}_target")
    with open_sink(target, tables=MARKET_TABLES) as sink:
        # autovacuum must not analyze behind the test's back (chunks copy the hypertable's options)
        sink.conn.execute("alter table raw.bars set (autovacuum_enabled = false)")
    _load(target, [SAMPLE / "DA-AAPL-T-2021-04-21.csv.gz"])

    with open_sink(target) as sink:
        conn = sink.conn
        assert "raw.bars" in stale_statistics(conn, TABLES), "never analyzed: the whole table"
        analyze_stale(conn, TABLES)
        assert stale_statistics(conn, TABLES) == [], "just analyzed: nothing is stale"
        (aapl,) = conn.execute("select count(*) from raw.bars").fetchone()

    # one more session of one symbol: a few rows, not worth re-sampling the table
    with gzip.open(SAMPLE / "DA-AAPL-T-2021-04-21.csv.gz", "rt") as f:
        lines = f.read().splitlines()
    session = tmp_path / "DA-AAPL-T-2021-04-22.csv"
    assert lines[-1][:10] < "2021-04-22", lines[-1]  # oldest first: the last line is the newest session
    session.write_text("\n".join([lines[0], "2021-04-22" + lines[-1][10:]]) + "\n")
    _load(target, [session])
    with open_sink(target) as sink:
        stale = stale_statistics(sink.conn, TABLES)
        assert "raw.bars" not in stale, stale
        if target_name == "timescale":  # at most the new session's chunk, never analyzed yet
            assert all(s.startswith("_timescaledb_internal.") for s in stale), stale
            assert len(stale) <= 1, stale
        else:
            assert stale == [], stale

    # a second symbol's whole history: the table changed by more than a tenth (the server's default
    # autovacuum_analyze_scale_factor), but less than the table's own scale factor, while it has one
    with open_sink(target) as sink:
        sink.conn.execute("alter table raw.bars set (autovacuum_analyze_scale_factor = 5)")
    _load(target, [SAMPLE / "DA-MSFT-T-2021-04-21.csv.gz"])
    with open_sink(target) as sink:
        conn = sink.conn
        (both,) = conn.execute("select count(*) from raw.bars").fetchone()
        assert both > 1.5 * aapl
        stale = stale_statistics(conn, TABLES)
        assert "raw.bars" not in stale and not any(s.startswith("_timescaledb_internal.") for s in stale), stale
        conn.execute("alter table raw.bars reset (autovacuum_analyze_scale_factor)")
        assert "raw.bars" in stale_statistics(conn, TABLES)
        analyze_stale(conn, TABLES)
        assert stale_statistics(conn, TABLES) == []
