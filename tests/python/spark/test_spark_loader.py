"""The loaders on the local Spark target (session method, local[*], Parquet tables): the same
guarantees as on DuckDB and PostgreSQL, as far as Parquet tables carry them (docs/spark.md).

One SparkSession per process (its warehouse folder and metastore are fixed when it starts), so the
whole module shares one warehouse under tmp_path and the tests run in order. Skip with -m "not spark".
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="the spark target needs `make spark` (dbt-spark, pyspark)")

from market_warehouse.config import load_target
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.schema import BARS
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sinks.spark_sink import SparkUnsupported, stop_spark

pytestmark = pytest.mark.spark

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "alphavantage"
ROWS = 400  # the newest bars of each file: enough to exercise every path, small enough for Spark


def _trimmed(src: str, dst: Path, edit=None) -> Path:
    with gzip.open(SAMPLE / src, "rt") as f:
        lines = f.read().splitlines()
    body = lines[1:][:ROWS]
    if edit:
        body = edit(body)
    dst.write_text("\n".join([lines[0], *body]) + "\n")
    return dst


@pytest.fixture(scope="module")
def spark_sink(tmp_path_factory):
    base = tmp_path_factory.mktemp("spark")
    mp = pytest.MonkeyPatch()
    mp.setenv("MWH_TARGET", "spark")
    mp.setenv("MWH_SPARK_DIR", str(base / "warehouse"))
    mp.setenv("MWH_SPARK_DRIVER_MEMORY", "1g")
    target = load_target()
    assert target.type == "spark"
    sink = open_sink(target)
    yield sink, base
    sink.close()
    stop_spark()
    mp.undo()


def _count(sink, sql: str) -> int:
    return int(sink.query(sql)[0][0])


def test_first_load_then_reload_is_idempotent(spark_sink):
    sink, base = spark_sink
    files = [_trimmed("DA-AAPL-T-2021-04-21.csv.gz", base / "DA-AAPL-T-2021-04-21.csv"),
             _trimmed("DA-F-T-2021-04-21.csv.gz", base / "DA-F-T-2021-04-21.csv")]
    first = load_files(sink, files, "alphavantage")
    assert [(r.status, r.rows_read, r.loaded, r.replaced, r.duplicate) for r in first] == \
        [("success", ROWS, ROWS, 0, 0)] * 2
    assert _count(sink, "select count(*) from raw.bars") == 2 * ROWS
    # Partitioned by interval and symbol: the unit a merge replaces.
    parts = {r[0] for r in sink.query("show partitions raw.bars")}
    assert parts == {"interval=1d/symbol=AAPL", "interval=1d/symbol=F"}
    runs = sink.query("select status, rows_loaded from raw.loader_runs order by source")
    assert runs == [("success", ROWS), ("success", ROWS)]

    again = load_files(sink, files[:1], "alphavantage")
    assert (again[0].loaded, again[0].replaced, again[0].duplicate) == (0, 0, ROWS)
    assert _count(sink, "select count(*) from raw.bars") == 2 * ROWS
    assert _count(sink, "select count(*) from raw.loader_runs") == 3
    # Rows of an unchanged reload keep the run that first wrote them (as the merge on other targets).
    assert _count(sink, "select count(distinct run_id) from raw.bars") == 1


def test_newest_wins_keeps_replaced_rows(spark_sink):
    sink, base = spark_sink

    def bump_volume(body: list[str]) -> list[str]:  # three corrected bars (volume column)
        out = []
        for i, line in enumerate(body):
            f = line.split(",")
            if i < 3:
                f[6] = str(int(float(f[6])) + 1000)
            out.append(",".join(f))
        return out

    (base / "fix").mkdir()
    fixed = _trimmed("DA-AAPL-T-2021-04-21.csv.gz", base / "fix" / "DA-AAPL-T-2021-04-21.csv", bump_volume)
    before = dict(sink.query("select ts, volume from raw.bars where symbol = 'AAPL'"))
    report = load_files(sink, [fixed], "alphavantage")[0]
    assert (report.loaded, report.replaced, report.duplicate) == (0, 3, ROWS - 3)
    after = dict(sink.query("select ts, volume from raw.bars where symbol = 'AAPL'"))
    changed = {ts for ts in after if after[ts] != before[ts]}
    assert len(changed) == 3 and all(after[ts] == before[ts] + 1000 for ts in changed)
    assert _count(sink, "select count(*) from raw.bars") == 2 * ROWS
    history = sink.query("select ts, volume, replaced_by_run_id from raw.replaced_bars")
    assert {h[0] for h in history} == changed
    assert all(h[1] == before[h[0]] for h in history)
    # F's partition was not touched: still the first run's rows.
    assert _count(sink, "select count(distinct run_id) from raw.bars where symbol = 'F'") == 1


def test_invalid_rows_go_to_quarantine(spark_sink):
    sink, base = spark_sink

    def break_one(body: list[str]) -> list[str]:  # high below low on the first bar
        f = body[0].split(",")
        f[2], f[3] = f[3], f[2]
        return [",".join(f), *body[1:]]

    bad = _trimmed("DA-KO-T-2021-04-21.csv.gz", base / "DA-KO-T-2021-04-21.csv", break_one)
    report = load_files(sink, [bad], "alphavantage")[0]
    assert (report.status, report.loaded, report.quarantined) == ("success", ROWS - 1, 1)
    rows = sink.query("select source, row_number, reason from raw.quarantine")
    assert len(rows) == 1 and rows[0][0].endswith("DA-KO-T-2021-04-21.csv") and rows[0][1] == 2
    assert "high" in rows[0][2]
    assert _count(sink, "select rows_quarantined from raw.loader_runs where source like '%DA-KO%'") == 1


def test_a_failed_batch_writes_nothing(spark_sink):
    sink, _ = spark_sink
    bars_before = _count(sink, "select count(*) from raw.bars")
    runs_before = _count(sink, "select count(*) from raw.loader_runs")
    cols = ", ".join(BARS.column_names)
    stored = pd.DataFrame(sink.query(f"select {cols} from raw.bars where symbol = 'AAPL' limit 5"),
                          columns=BARS.column_names)
    new = stored.assign(symbol="MSFT", run_id="r-failed")
    changed = stored.assign(volume=stored["volume"] + 1, run_id="r-failed")
    with pytest.raises(RuntimeError, match="dies midway"), sink.transaction() as tx:
        counts = tx.merge(BARS, pd.concat([new, changed], ignore_index=True))
        assert (counts.loaded, counts.replaced) == (5, 5)
        raise RuntimeError("the batch dies midway")
    assert _count(sink, "select count(*) from raw.bars") == bars_before
    assert _count(sink, "select count(*) from raw.bars where symbol = 'MSFT'") == 0
    assert _count(sink, "select count(*) from raw.bars where run_id = 'r-failed'") == 0
    assert _count(sink, "select count(*) from raw.loader_runs") == runs_before
    # Row-level DELETE (mwh runs undo) is refused with the reason, not attempted.
    with pytest.raises(SparkUnsupported, match="no row-level DELETE"), sink.transaction() as tx:
        tx.execute("delete from raw.bars where run_id = ?", ["x"])


def test_spark_cross_database_macros(spark_sink):
    """The spark__ macros (macros/spark/) through dbt on the spark target, in this process's session:
    the same values as on DuckDB and PostgreSQL."""
    from market_warehouse.dbt import run_dbt

    ts = "timestamp '2024-01-02 10:07:30.5'"
    sql = f"""
        select
            {{{{ mwh_time_bucket('5 minutes', "{ts}") }}}} as b5,
            {{{{ mwh_time_bucket('1 day', "{ts}") }}}} as b1d,
            {{{{ mwh_time_bucket('1000 milliseconds', "{ts}") }}}} as b1s,
            {{{{ mwh_seconds_between("timestamp '2024-01-02 10:00:00'", "{ts}") }}}} as secs,
            {{{{ mwh_iso_ts("{ts}") }}}} as iso,
            {{{{ mwh_json_number("p", 'a') }}}} as ja,
            {{{{ mwh_json_number("p", 'b') }}}} as jb,
            {{{{ mwh_json_number("p", 'c') }}}} as jc,
            {{{{ mwh_first('v', 't') }}}} as first_v,
            {{{{ mwh_last('v', 't') }}}} as last_v,
            {{{{ mwh_round('sum(v) / 3', 4) }}}} as r
        from values ('{{"a": 1.5, "b": "2", "c": 7}}', 2, 1.0), ('{{"a": 1.5, "b": "2", "c": 7}}', 1, 3.0)
            as x (p, t, v)
        group by p"""
    res = run_dbt(["show", "--inline", sql, "--limit", "1"], target="spark", quiet=True)
    assert res.success, res.exception
    row = list(res.result.results[0].agate_table.rows[0])
    b5, b1d, b1s, secs, iso, ja, jb, jc, first_v, last_v, r = row
    assert str(b5).startswith("2024-01-02 10:05:00") and str(b1d).startswith("2024-01-02 00:00:00")
    assert str(b1s).startswith("2024-01-02 10:07:30") and float(secs) == 450.5
    assert iso == "2024-01-02T10:07:30Z"
    assert (float(ja), jb, float(jc)) == (1.5, None, 7.0)  # a JSON string is not a number
    assert (float(first_v), float(last_v), float(r)) == (3.0, 1.0, 1.3333)  # by t, not by row order
