"""The two throughput paths of `mwh load ticks` give what the plain paths give:

- the parse split across two processes (sources/binance_ws.py `_parse_split`, MWH_TICK_PARSE_PROCESSES=2)
  equals the one-process
  parse: frames, rejected lines in the same order, counts, the file's symbol, the rebuilt book;
- binary COPY (sinks/ticks_pg.py) stores what CSV COPY stores, nulls, non-ASCII text and NaN included,
  on PostgreSQL (plain: no TimescaleDB needed for the encoding), and the merge through it keeps its
  counts (a reload: all duplicates; a changed row: replaced).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from market_warehouse.loaders.book import rebuild
from market_warehouse.loaders.schema import TRADES
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sinks.postgres_sink import copy_parts
from market_warehouse.loaders.sinks.ticks_pg import binary_copies, copy_binary
from market_warehouse.loaders.sources import binance_ws
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, gc_paused
from market_warehouse.runs import utcnow, with_audit
from tests.python.microstructure import capture

N_LINES = 24_000  # the REST snapshot is line 55: moved into the second half below


def _bad(n: int) -> list[str]:
    return [
        "not-a-number {}",
        f'17231613{n:08d}000 {{"stream":"btcusdt@trade","data":{{"e":"trade","E":1723161300001,'
        f'"T":1723161300001,"s":"BTCUSDT","t":{n},"p":"-5","q":"0.1","m":true}}}}',
        f'17231613{n:08d}001 {{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{n},'
        '"s":"BTCUSDT","b":"61800.2","B":"x","a":"61800.3","A":"1","T":1723161300001,"E":1723161300001}}',
        f'17231613{n:08d}002 {{"stream":"x","data":{{"e":"aggTrade","s":"BTCUSDT"}}}}',
    ]


def _parse(path, processes: str, monkeypatch):
    monkeypatch.setenv("MWH_TICK_PARSE_PROCESSES", processes)
    with gc_paused():
        return binance_ws.TICK_FORMATS["binance-ws"](path)


def test_split_parse_equals_one_process(tmp_path, monkeypatch):
    rows = capture.lines(N_LINES)
    snapshot = next(i for i, r in enumerate(rows) if "lastUpdateId" in r)
    snap = rows.pop(snapshot)
    # bad lines in both halves, the snapshot (which names no symbol) in the second half, and one
    # depth diff with a bad level in the second half
    diffs = [i for i, r in enumerate(rows) if '"depthUpdate"' in r]
    broken = json.loads(rows[diffs[-5]].split(" ", 1)[1])
    broken["data"]["b"] = [["61800.1"]]
    rows[diffs[-5]] = rows[diffs[-5]].split(" ", 1)[0] + " " + json.dumps(broken)
    rows = rows[:100] + _bad(1) + rows[100:18_000] + [snap] + _bad(2) + rows[18_000:]
    path = capture.write(tmp_path / "capture.txt", rows)
    monkeypatch.setattr(binance_ws, "SPLIT_MIN_CHARS", 1_000)  # the split path, here on a small file

    one = _parse(path, "1", monkeypatch)
    two = _parse(path, "2", monkeypatch)
    assert binance_ws._cut(path.read_text()) > 0
    cut_line = path.read_text()[:binance_ws._cut(path.read_text())].count("\n") + 1
    assert 100 < cut_line < 18_000, "the snapshot and half the bad lines must be past the cut"

    for table in binance_ws.TICK_COLUMNS:
        pd.testing.assert_frame_equal(one.frames[table], two.frames[table], check_exact=True)
    pd.testing.assert_frame_equal(one.rejected, two.rejected, check_exact=True)
    assert len(one.rejected) == 9 and one.rejected["row_number"].is_unique
    assert one.events == two.events and one.parameters == two.parameters
    assert one.parameters["symbol"] == "BTCUSDT"
    assert len(one.frames["depth_snapshots"]) == 1
    # the second half's levels are not sent back: the book fold reads them from the rows' JSON
    assert 0 < len(two.levels) < len(one.levels)
    book_one = rebuild(one.frames["depth_updates"], one.frames["depth_snapshots"], parsed=dict(one.levels))
    book_two = rebuild(two.frames["depth_updates"], two.frames["depth_snapshots"], parsed=dict(two.levels))
    assert len(book_one[0]) > 500
    pd.testing.assert_frame_equal(book_one[0], book_two[0], check_exact=True)
    pd.testing.assert_frame_equal(book_one[1], book_two[1], check_exact=True)


def test_parse_processes_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("MWH_TICK_PARSE_PROCESSES", raising=False)
    assert binance_ws.parse_processes() == 1  # the default: two were not faster on a loaded machine
    monkeypatch.setenv("MWH_TICK_PARSE_PROCESSES", "3")
    with pytest.raises(ValueError, match="MWH_TICK_PARSE_PROCESSES='3': 1 or 2"):
        binance_ws.parse_processes()


def _trades(n: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    ts = pd.Timestamp("2024-08-08", tz="UTC") + pd.to_timedelta(np.arange(n) * 1_500, unit="us")
    frame = pd.DataFrame({
        "ts": ts, "symbol": np.where(np.arange(n) % 3 == 0, "ÉTHUSDT", "BTCUSDT"), "exchange": "BINANCE",
        "trade_id": pd.array(np.arange(n) * 7 + 2**40, dtype="Int64"),
        "price": rng.uniform(1, 70_000, n), "quantity": rng.uniform(0, 5, n),
        "is_buyer_maker": pd.array(rng.integers(0, 2, n).astype(bool), dtype="boolean"),
        "event_ts": ts + pd.Timedelta(milliseconds=1), "received_at": ts + pd.Timedelta(microseconds=3)})
    frame.loc[5, "is_buyer_maker"] = pd.NA
    frame.loc[6, "event_ts"] = pd.NaT
    frame.loc[7, "received_at"] = pd.NaT
    frame.loc[8, "quantity"] = 0.1 + 0.2  # a float that needs all its digits
    return with_audit(frame, "a/päth,with \"quotes\"\nand a newline", "run-1", utcnow())[TRADES.column_names]


def test_binary_copy_equals_csv_copy_and_merges(postgres_target):
    frame = _trades()
    with open_sink(postgres_target, tables=ALL_TICK_TABLES) as sink:
        with sink.transaction() as tx:
            tx.execute("create table raw.t_csv (like raw.trades)")
            tx.execute("create table raw.t_bin (like raw.trades)")
            copy_parts(tx.cur, "raw.t_csv", TRADES.column_names, [(frame, None)])
            copy_binary(tx.cur, "raw.t_bin", TRADES, frame)
            copy_binary(tx.cur, "raw.t_bin", TRADES, frame.iloc[:0])  # no rows: header and trailer only
        assert sink.query("select count(*) from raw.t_bin")[0][0] == len(frame)
        for a, b in (("t_csv", "t_bin"), ("t_bin", "t_csv")):
            assert sink.query(f"select count(*) from (select * from raw.{a} except all select * from raw.{b}) x") \
                == [(0,)]
        assert sink.query("select count(*) from raw.t_bin where is_buyer_maker is null or event_ts is null "
                          "or received_at is null") == [(3,)]
        assert sink.query("select quantity from raw.t_bin where trade_id = ?", [8 * 7 + 2**40]) == [(0.1 + 0.2,)]

        # the merge through binary COPYs: new rows, then a reload (all duplicates), then one changed row
        for expect, part in (((len(frame), 0, 0), frame), ((0, 0, len(frame)), frame),
                             ((0, 1, 0), frame.iloc[[10]].assign(price=1.5))):
            with sink.transaction() as tx:
                c = binary_copies(tx).merge(TRADES, part)
            assert (c.loaded, c.replaced, c.duplicate) == expect
        assert sink.query("select price from raw.trades where trade_id = ?", [10 * 7 + 2**40]) == [(1.5,)]
        with pytest.raises(ValueError, match="finer than a microsecond"), sink.transaction() as tx:
            copy_binary(tx.cur, "raw.t_bin", TRADES, frame.assign(ts=frame["ts"] + pd.Timedelta(1, "ns")))
