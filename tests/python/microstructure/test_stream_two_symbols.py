"""`mwh stream binance` with two symbols on one connection: the local replay server sends every message
of the capture twice, once as BTCUSDT and once as a copy renamed ETHUSDT (same ids, same levels), and
answers the REST snapshot of either symbol with the book at its position. Each symbol must get its
own book, synced from its own snapshot, with no gap, and every row of each symbol must equal the
file load of the BTCUSDT capture (the copy's rows with the symbol renamed). DuckDB only: the stream's
write path is the file load's, tested on TimescaleDB in test_stream_replay.py."""

from __future__ import annotations

import pandas as pd

from market_warehouse.config import Target
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.ticks import ALL_TICK_TABLES
from tests.python.microstructure import capture
from tests.python.microstructure.test_stream_replay import Replay, _file_load, _frame, _stream

LINES = 8_000  # the snapshot (line 55) and ~550 diffs, ~30 s of market time


def _renamed(text: str) -> str:
    return text.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"').replace('"stream":"btcusdt@', '"stream":"ethusdt@')


class TwoSymbolReplay(Replay):
    """Every stream message followed by its ETHUSDT copy; the snapshot (Replay's) is the BTCUSDT book,
    the copy's book being the same."""

    def __init__(self, lines: list[str], disconnect: bool = False):
        doubled = []
        for line in lines:
            doubled.append(line)
            if "lastUpdateId" not in line:
                ns, body = line.split(" ", 1)
                doubled.append(f"{ns} {_renamed(body)}")
        super().__init__(doubled, gap=False, disconnect=disconnect)


def test_two_symbols_each_equal_the_file_load(duckdb_target: Target, tmp_path, monkeypatch):
    lines = capture.lines(LINES)
    replay = TwoSymbolReplay(lines)
    stats = _stream(replay, duckdb_target, monkeypatch, ["BTCUSDT", "ETHUSDT"])
    assert stats.messages == replay.to_send
    assert stats.gaps == 0
    assert stats.snapshots >= 2  # one per symbol

    file_target = _file_load(lines, tmp_path)

    specs = {
        "trades": ("ts, symbol, exchange, trade_id, price, quantity, is_buyer_maker, event_ts", "symbol, trade_id"),
        "book_tickers": ("ts, symbol, exchange, update_id, bid_price, bid_qty, ask_price, ask_qty, transaction_ts",
                         "symbol, update_id, ts"),
        "depth_updates": ("ts, symbol, first_update_id, final_update_id, prev_final_update_id, bids, asks",
                          "symbol, final_update_id"),
    }
    state_cols = ("ts, symbol, update_id, best_bid, best_bid_qty, best_ask, best_ask_qty, bid_levels, ask_levels, "
                  "bid_depth_10bps, ask_depth_10bps, bid_depth_50bps, ask_depth_50bps")
    with open_sink(duckdb_target, tables=ALL_TICK_TABLES) as sink, open_sink(file_target, tables=ALL_TICK_TABLES) as fsink:
        for table, (cols, order) in {**specs, "book_states": (state_cols, "symbol, update_id")}.items():
            got, want = _frame(sink, table, cols, order), _frame(fsink, table, cols, order)
            assert len(want) > 0 and set(want["symbol"]) == {"BTCUSDT"}
            for symbol in ("BTCUSDT", "ETHUSDT"):
                mine = got[got["symbol"] == symbol].drop(columns="symbol").reset_index(drop=True)
                ref = want.drop(columns="symbol")
                if table == "book_states":  # from the symbol's own snapshot on: the file load's states
                    assert len(mine) > 0.8 * len(ref), (symbol, len(mine), len(ref))
                    ref = ref[ref["update_id"] >= mine["update_id"].min()].reset_index(drop=True)
                pd.testing.assert_frame_equal(mine, ref, check_dtype=False, obj=f"{table} {symbol}")
        events = sink.query("select symbol, event from raw.book_sequence_events order by symbol")
    assert {e for _, e in events} == {"synced"}
    assert {s for s, _ in events} == {"BTCUSDT", "ETHUSDT"}
