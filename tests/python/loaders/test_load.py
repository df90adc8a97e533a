"""Landing real vendor files in each real database: idempotent, newest load wins, nothing lost."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
AAPL = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
BAD_BODY = SAMPLE / "alphavantage" / "DA-BF.B-T-2021-04-21.csv"
FIL_FEB = SAMPLE / "binance_klines" / "FILUSDT-1m-2023-02.csv.gz"

BAR_SQL = ("select symbol, exchange, interval, ts, open, high, low, close, volume, adj_close, vwap, "
           "trade_count, quote_volume, taker_buy_volume, taker_buy_quote_volume, source, run_id, loaded_at "
           "from raw.bars order by symbol, exchange, interval, ts")


def _runs(sink):
    return sink.query("select source, status, rows_read, rows_loaded, rows_replaced, rows_duplicate, "
                      "rows_quarantined, error from raw.loader_runs order by started_at, source")


def test_loading_the_same_files_twice_leaves_exactly_the_same_bars(any_target):
    with open_sink(any_target) as sink:
        r1 = load_files(sink, [AAPL], "alphavantage") + load_files(sink, [FIL_FEB], "binance-klines")
        assert [r.loaded for r in r1] == [5402, 40320]
        before = sink.query(BAR_SQL)
        actions_before = sink.query("select * from raw.corporate_actions order by symbol, ex_date, action")
        r2 = load_files(sink, [AAPL], "alphavantage") + load_files(sink, [FIL_FEB], "binance-klines")
        assert [(r.loaded, r.replaced, r.duplicate) for r in r2] == [(0, 0, 5402), (0, 0, 40320)]
        assert sink.query(BAR_SQL) == before
        assert sink.query("select * from raw.corporate_actions order by symbol, ex_date, action") == actions_before
        assert len(before) == 5402 + 40320
        runs = _runs(sink)
        assert [r[1] for r in runs] == ["success"] * 4
        assert runs[2][3:6] == (0, 0, 5402)


def test_overlapping_load_with_corrections_newest_wins(any_target, tmp_path):
    text = gzip.decompress(AAPL.read_bytes()).decode().splitlines()
    header, rows = text[0], text[1:]
    old = tmp_path / "DA-AAPL-T-2021-04-20.csv"
    old.write_text("\n".join([header, *rows[:100]]) + "\n")
    # The vendor re-sends bars 90..99 with two closes corrected, and ten new bars.
    corrected = []
    for i, row in enumerate(rows[90:110]):
        f = row.split(",")
        if i in (3, 7):
            f[4] = str(round(float(f[4]) + 0.01, 2))
            f[3] = str(min(float(f[3]), float(f[4])))
        corrected.append(",".join(f))
    new = tmp_path / "DA-AAPL-T-2021-04-21.csv"
    new.write_text("\n".join([header, *corrected]) + "\n")
    with open_sink(any_target) as sink:
        (a,) = load_files(sink, [old], "alphavantage", run_id="run-old")
        (b,) = load_files(sink, [new], "alphavantage", run_id="run-new")
        assert (a.loaded, a.replaced, a.duplicate) == (100, 0, 0)
        assert (b.loaded, b.replaced, b.duplicate) == (10, 2, 8)
        assert sink.query("select count(*) from raw.bars")[0][0] == 110
        fixed = [c.split(",") for i, c in enumerate(corrected) if i in (3, 7)]
        for f in fixed:
            close, run = sink.query("select close, run_id from raw.bars where symbol = 'AAPL' and "
                                    "cast(ts as date) = cast(? as date)", [f[0]])[0]
            assert (close, run) == (float(f[4]), "run-new")
        assert sink.query("select rows_replaced from raw.loader_runs where run_id = 'run-new'") == [(2,)]
        # Untouched duplicates keep the run that first wrote them.
        assert sink.query("select count(*) from raw.bars where run_id = 'run-old'")[0][0] == 98


def test_a_bad_file_fails_alone_and_bad_rows_go_to_quarantine(any_target, tmp_path):
    mixed = tmp_path / "DA-MIX-T-2021-01-01.csv"
    mixed.write_text(
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2020-01-02,10,11,9,10.5,10.5,100,0,1\n"
        "2020-01-03,10,9,9.5,9.6,9.6,100,0,1\n"
        "2020-01-06,10,11,9,10.5,10.5,oops,0,1\n"
        "2020-01-07,10,11,9,10.5,10.5,100,0,1\n"
    )
    with open_sink(any_target) as sink:
        reports = load_files(sink, [BAD_BODY, AAPL, mixed], "alphavantage")
        assert [r.status for r in reports] == ["failed", "success", "success"]
        assert str(BAD_BODY) in reports[0].error and "JSON" in reports[0].error
        assert (reports[2].loaded, reports[2].quarantined) == (2, 2)
        assert sink.query("select count(*) from raw.bars where symbol = 'BF.B'")[0][0] == 0
        assert sink.query("select count(*) from raw.bars where symbol = 'AAPL'")[0][0] == 5402
        q = sink.query("select source, row_number, reason, record, target_table from raw.quarantine "
                       "order by row_number")
        assert [(r[0], r[1], r[2]) for r in q] == [
            (str(mixed), 3, "high < low; high below open/close"),
            (str(mixed), 4, "unparsable number in volume: 'oops'"),
        ]
        assert json.loads(q[1][3])["volume"] == "oops" and q[0][4] == "raw.bars"
        runs = {r[0]: r for r in _runs(sink)}
        assert runs[str(BAD_BODY)][1] == "failed" and runs[str(BAD_BODY)][2] == 0
        assert runs[str(mixed)][2:7] == (4, 2, 0, 0, 2)
