"""Compression (columnstore) of raw.bars by its policy: invisible to readers, and loads and corrections
into compressed chunks still work through the loader's newest-wins merge. ML hypertables get their own
policies. `mwh retention` plans and applies deletes on targets without policies."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import psycopg
import pytest
from conftest import conninfo

from market_warehouse import retention
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[3]
FILUSDT = sorted((REPO / "data" / "sample" / "binance_klines").glob("FILUSDT-1m-2023-*.csv.gz"))

READS = [
    # what readers ask raw.bars: aggregates per day (summed exactly: a float sum depends on row order,
    # which compression changes), a point lookup, a range in time order
    "select symbol, date_trunc('day', ts) as d, count(*), sum(volume::numeric), max(high), min(low)"
    " from raw.bars group by 1, 2 order by 1, 2",
    "select * from raw.bars where symbol = 'FILUSDT' and ts = '2023-04-19 09:00+00'",
    "select ts, open, high, low, close, volume from raw.bars"
    " where symbol = 'FILUSDT' and ts >= '2023-02-10' and ts < '2023-02-11' order by ts",
]


def _reads(conn) -> list[list[tuple]]:
    return [conn.execute(q).fetchall() for q in READS]


def _chunks(conn) -> tuple[int, int]:
    rows = conn.execute("select is_compressed from timescaledb_information.chunks"
                        " where hypertable_schema = 'raw' and hypertable_name = 'bars'").fetchall()
    return sum(1 for (c,) in rows if c), len(rows)


def test_compression_is_invisible_and_corrections_still_load(pg_server, full_edition, tmp_path):
    db = full_edition()
    os.environ["MWH_PG_DATABASE"] = db
    with open_sink() as sink:
        reports = load_files(sink, FILUSDT, "binance-klines")
    assert sum(r.loaded for r in reports) == 83_520

    with psycopg.connect(conninfo(pg_server, db), autocommit=True) as conn:
        before = _reads(conn)
        lines = retention.install_policies(conn, retention.settings())
        assert any("raw.bars: compress chunks older than 30 days" in line for line in lines)
        job = conn.execute("select job_id from timescaledb_information.jobs where proc_name = 'policy_compression'"
                           " and hypertable_schema = 'raw' and hypertable_name = 'bars'").fetchone()[0]
        conn.execute(f"call run_job({job})")  # the policy's own run: every 2023 chunk is older than 30 days
        compressed, total = _chunks(conn)
        assert compressed == total >= 2
        size = conn.execute("select before_compression_total_bytes, after_compression_total_bytes"
                            " from hypertable_compression_stats('raw.bars')").fetchone()
        assert size[1] < size[0] / 3, size
        assert _reads(conn) == before, "compression changed what readers see"

    # a vendor correction of three bars into a compressed chunk, through the loader's merge (newest wins)
    with gzip.open(FILUSDT[1], "rt") as f:
        lines = f.read().splitlines()
    header, body = lines[0], lines[1:]
    target_ms = 1681894800000  # 2023-04-19 09:00 UTC
    fixed = []
    for line in body:
        f = line.split(",")
        if target_ms <= int(f[0]) < target_ms + 3 * 60_000:
            f[2] = f"{float(f[2]) * 1.01:.4f}"  # high
            f[5] = f"{float(f[5]) + 1000:.1f}"  # volume
        fixed.append(",".join(f))
    corrected = tmp_path / "FILUSDT-1m-2023-04.csv"
    corrected.write_text("\n".join([header, *fixed]) + "\n")
    with open_sink() as sink:
        (report,) = load_files(sink, [corrected], "binance-klines")
    assert report.status == "success", report.error
    assert (report.replaced, report.duplicate, report.loaded) == (3, len(fixed) - 3, 0)

    with psycopg.connect(conninfo(pg_server, db), autocommit=True) as conn:
        after = _reads(conn)
        assert after[0] != before[0] and after[2] == before[2]  # that day changed, 10 Feb did not
        point = after[1]
        assert len(point) == 1
        cols = [d.name for d in conn.execute(READS[1]).description]
        row = dict(zip(cols, point[0], strict=True))
        old = dict(zip(cols, before[1][0], strict=True))
        assert row["volume"] == pytest.approx(old["volume"] + 1000)
        assert row["high"] == pytest.approx(round(old["high"] * 1.01, 4))
        assert conn.execute("select count(*) from raw.bars").fetchone()[0] == 83_520
        # recompressing brings the chunk back; readers still see the corrected rows
        conn.execute(f"call run_job({job})")
        assert _reads(conn) == after


def test_ml_hypertables_get_their_own_policies(pg_server, full_edition):
    from market_warehouse.ml.db import ALL_TABLES

    db = full_edition()
    os.environ["MWH_PG_DATABASE"] = db
    with open_sink(tables=ALL_TABLES):
        pass
    with psycopg.connect(conninfo(pg_server, db), autocommit=True) as conn:
        retention.install_policies(conn, retention.settings(mwh_ml_retention_days=365))
        jobs = set(conn.execute("select proc_name, hypertable_name from timescaledb_information.jobs"
                                " where hypertable_schema = 'raw'").fetchall())
    for table in ("ml_predictions", "ml_signals", "ml_agent_decisions"):
        assert ("policy_compression", table) in jobs and ("policy_retention", table) in jobs, jobs
    assert ("policy_compression", "bars") in jobs


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_mwh_retention_dry_run_then_apply(kind, request):
    """Without the full edition, `mwh retention` deletes old minute bars: dry run first, then --apply."""
    request.getfixturevalue(f"{kind}_target")
    with open_sink() as sink:
        load_files(sink, FILUSDT, "binance-klines")
    said: list[str] = []
    assert retention.run(None, False, False, 30, None, now=_utc("2023-04-15"), out=said.append) == 0
    assert said[0] == ("would delete raw.bars: 40,320 rows where \"interval\" = '1m' and ts < "
                       "'2023-03-16T00:00:00+00:00'"), said
    assert said[-1] == "retention: dry run; add --apply to delete"
    target = retention.load_target(None)
    with retention.connect(target) as conn:
        assert conn.execute("select count(*) from raw.bars").fetchone()[0] == 83_520
    said.clear()
    assert retention.run(None, True, False, 30, None, now=_utc("2023-04-15"), out=said.append) == 0
    assert said[-1] == "retention: deleted 40,320 rows"
    with retention.connect(target) as conn:
        assert conn.execute("select count(*), min(ts) >= '2023-04-01' from raw.bars").fetchone() == (43_200, True)
    with pytest.raises(retention.RetentionError, match="policies need TimescaleDB's full edition|full edition"):
        retention.run(None, False, True, 30, None, out=said.append)


def _utc(day: str):
    from datetime import UTC, datetime
    return datetime.fromisoformat(day).replace(tzinfo=UTC)
