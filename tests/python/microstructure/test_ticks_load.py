"""`mwh load ticks` on the real Binance capture: every message lands, a reload adds nothing, bad lines
go to quarantine with their line number, the rebuilt book agrees with the exchange's bookTicker, and
bars from trades equal a pandas resampling of the same trades (DuckDB and TimescaleDB)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from market_warehouse.cli import main
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.ticks import ALL_TICK_TABLES
from tests.python.microstructure import capture

BAD_LINES = [
    "not-a-number {}",  # no receive time
    '1723161300000000000 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161300001,"T":1723161300001,'
    '"s":"BTCUSDT","t":1,"p":"-5","q":"0.1","m":true}}',  # negative price
    '1723161300000000001 {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}',  # unknown event
    '1723161300000000002 {"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"s":"BTCUSDT",'
    '"b":"61800.2","B":"x","a":"61800.3","A":"1","T":1723161300001,"E":1723161300001}}',  # bad bid qty
    '1723161300000000003 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161300001,"T":1723161300001,'
    '"s":"BTCUSDT","t":2,"p":"61800.2","q":"0.1","m":1}}',  # a number for the buyer-maker flag
]


@pytest.fixture(params=["duckdb", "timescale"])
def target(request):
    return request.getfixturevalue(f"{request.param}_target")


def _count(sink, table: str) -> int:
    return sink.query(f"select count(*) from raw.{table}")[0][0]


def test_load_idempotent_quarantine_book_and_bars(target, tmp_path, capsys):
    rows = capture.lines()
    path = capture.write(tmp_path / "BTCUSDT-capture.txt", rows + BAD_LINES)
    expected = capture.counts(rows)

    assert main(["load", "ticks", str(path), "--format", "binance-ws"]) == 0
    out = capsys.readouterr().out
    assert f"read {len(rows) + len(BAD_LINES)}, loaded {len(rows)}" in out, out

    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        assert _count(sink, "trades") == expected["trade"]
        assert _count(sink, "depth_updates") == expected["depthUpdate"]
        assert _count(sink, "book_tickers") == expected["bookTicker"]
        assert _count(sink, "depth_snapshots") == expected["snapshot"] == 1
        q = sink.query("select row_number, target_table, reason from raw.quarantine order by row_number")
        n = len(rows)
        assert [r[0] for r in q] == [n + 1, n + 2, n + 3, n + 4, n + 5]
        assert "not `<receive ns> <json>`" in q[0][2]
        assert q[1][1] == "raw.trades" and "price `p` '-5' is not a positive number" in q[1][2]
        assert q[2][1] == "unknown" and "unknown event type 'aggTrade'" in q[2][2]
        assert q[3][1] == "raw.book_tickers" and "bid qty `B` 'x'" in q[3][2]
        assert q[4][1] == "raw.trades" and "buyer-maker flag `m` 1 is not true, false or absent" in q[4][2]
        first = {t: _count(sink, t) for t in ("book_states", "book_sequence_events", "bars", "loader_runs")}
        assert first["book_states"] > 1000
        assert sink.query("select event from raw.book_sequence_events") == [("synced",)]

        # Book vs the exchange's bookTicker at the same update id: best bid/ask price and quantity.
        n_same, agree = sink.query("""
            select count(*), sum(case when s.best_bid = t.bid_price and s.best_ask = t.ask_price
                                       and s.best_bid_qty = t.bid_qty and s.best_ask_qty = t.ask_qty
                                      then 1 else 0 end)
            from raw.book_states as s
            join raw.book_tickers as t on t.symbol = s.symbol and t.update_id = s.update_id""")[0]
        assert n_same > 50
        assert agree == n_same, f"book/bookTicker agreement {agree}/{n_same}"

        # Bars from trades == a pandas resampling of the stored trades, for the complete bars.
        trades = pd.DataFrame(sink.query("select ts, price, quantity, is_buyer_maker from raw.trades"),
                              columns=["ts", "price", "quantity", "is_buyer_maker"])
        bars = pd.DataFrame(sink.query(
            "select interval, ts, open, high, low, close, volume, vwap, trade_count, taker_buy_volume, source "
            "from raw.bars order by interval, ts"),
            columns=["interval", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count",
                     "taker_buy_volume", "source"])
    assert set(bars["source"]) == {f"{path}#bars"}
    trades["ts"] = pd.to_datetime(trades["ts"], utc=True)
    trades = trades.sort_values("ts", kind="stable").set_index("ts")
    trades["notional"] = trades["price"] * trades["quantity"]
    trades["buy"] = trades["quantity"].where(~trades["is_buyer_maker"].astype(bool), 0.0)
    for interval, rule in (("1m", "1min"), ("1s", "1s")):
        mine = bars[bars["interval"] == interval].set_index(pd.to_datetime(bars["ts"][bars["interval"] == interval],
                                                                         utc=True))
        assert len(mine) > 0
        r = trades.resample(rule)
        ref = pd.DataFrame({"open": r["price"].first(), "high": r["price"].max(), "low": r["price"].min(),
                            "close": r["price"].last(), "volume": r["quantity"].sum(),
                            "vwap": r["notional"].sum() / r["quantity"].sum(), "trade_count": r["price"].count(),
                            "taker_buy_volume": r["buy"].sum()}).loc[mine.index]
        for col in ref.columns:
            pd.testing.assert_series_equal(mine[col].astype("float64"), ref[col].astype("float64"),
                                           check_names=False, rtol=1e-12)
    # Only complete bars: none before the capture's first event or after its last.
    assert bars["ts"].min() >= trades.index.min().floor("1min")

    # Loading the same file again adds nothing.
    capsys.readouterr()
    assert main(["load", "ticks", str(path), "--format", "binance-ws"]) == 0
    out = capsys.readouterr().out
    assert f"loaded 0, replaced 0, duplicate {len(rows)}" in out, out
    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        assert _count(sink, "trades") == expected["trade"]
        assert _count(sink, "book_states") == first["book_states"]
        assert _count(sink, "bars") == first["bars"]
        runs = sink.query("select target_table, rows_loaded, rows_duplicate, status from raw.loader_runs "
                          "order by started_at, target_table")
    assert len(runs) == first["loader_runs"] * 2
    assert all(status == "success" for *_, status in runs)
    assert {t for t, *_ in runs} >= {"raw.trades", "raw.depth_updates", "raw.book_tickers", "raw.depth_snapshots",
                                      "raw.book_states", "raw.book_sequence_events", "raw.bars", "unknown"}

    # `mwh runs undo` removes what the first load wrote, in every tick table and raw.bars.
    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        first_run = sink.query("select run_id from raw.loader_runs order by started_at limit 1")[0][0]
    assert main(["runs", "undo", first_run]) == 0
    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        left = {t: _count(sink, t) for t in ("trades", "depth_updates", "book_tickers", "depth_snapshots",
                                             "book_states", "book_sequence_events", "bars")}
    assert left == dict.fromkeys(left, 0)


def test_trades_csv_equals_the_capture_trades(duckdb_target, tmp_path, capsys):
    """A Binance trades dump (`id,price,qty,quote_qty,time,is_buyer_maker`) of the capture's trades
    lands the same trades as the websocket capture; a bad row is quarantined with its line."""
    rows = [json.loads(r.split(" ", 1)[1])["data"] for r in capture.lines(6000) if '"e":"trade"' in r]
    csv = ["id,price,qty,quote_qty,time,is_buyer_maker"]
    csv += [f"{d['t']},{d['p']},{d['q']},{float(d['p']) * float(d['q'])},{d['T']},{str(d['m']).lower()}" for d in rows]
    csv.append("99,abc,1,1,1723161300000,true")
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_text("\n".join(csv) + "\n")
    assert main(["load", "ticks", str(path), "--format", "trades-csv", "--no-bars"]) == 0
    out = capsys.readouterr().out
    assert f"loaded {len(rows)}" in out and "quarantined 1" in out, out
    with open_sink(duckdb_target, tables=ALL_TICK_TABLES) as sink:
        got = sink.query("select trade_id, price, quantity, is_buyer_maker, epoch_ms(ts) from raw.trades "
                         "where symbol = 'BTCUSDT' order by trade_id")
        q = sink.query("select row_number, reason from raw.quarantine")
    assert got == [(d["t"], float(d["p"]), float(d["q"]), d["m"], d["T"]) for d in sorted(rows, key=lambda d: d["t"])]
    assert q == [(len(csv), "unparsable number in price: 'abc'")]


def test_wrong_file_is_one_line(duckdb_target, tmp_path, capsys):
    path = tmp_path / "bars.csv"
    path.write_text("open_time,open,high\n1,2,3\n")
    assert main(["load", "ticks", str(path), "--format", "binance-ws"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "not a Binance websocket capture" in out and "Traceback" not in out
