"""The columnar parse of a Binance capture (sources/binance_ws.py `_parse_columnar`: the lines read by
DuckDB's JSON in C, every other line through the per-message path) gives what the per-message path
gives, to the bit: rows, types, quarantine with line numbers, counts, the file's symbol, and the book
levels (flat arrays, `Levels`) the fold reads. On the whole real capture, and on lines made to hit
each rule that sends a line to the per-message path. Also: the binary COPY of the tick tables is a
capability the sink's transaction declares (`binary_copy`), not a type test.
No database but DuckDB in memory, except the last test (PostgreSQL)."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from market_warehouse.loaders import book as bookmod
from market_warehouse.loaders.sinks import DuckDBSink, open_sink
from market_warehouse.loaders.sinks.ticks_pg import BinaryCopyTransaction, binary_copies
from market_warehouse.loaders.sources import binance_ws
from market_warehouse.loaders.sources.binance_ws import TICK_FORMATS, TickRows, tick_batch
from market_warehouse.loaders.ticks import ALL_TICK_TABLES
from tests.python.microstructure import capture


def _per_message(path) -> binance_ws.TickBatch:
    """Every line through `TickRows` one by one (the path the stream takes)."""
    rows = TickRows()
    binance_ws._scan(rows, path.read_text(), 1)
    return tick_batch(rows, {"symbol": rows.symbol, "exchange": rows.exchange})


def _assert_same(path) -> binance_ws.TickBatch:
    fast, slow = TICK_FORMATS["binance-ws"](path), _per_message(path)
    assert fast.parameters == slow.parameters
    assert dict(fast.events) == dict(slow.events)
    for name, frame in slow.frames.items():
        pd.testing.assert_frame_equal(fast.frames[name], frame, check_exact=True)
    pd.testing.assert_frame_equal(fast.rejected, slow.rejected, check_exact=True)  # same order too
    assert isinstance(fast.levels, binance_ws.Levels)
    assert sorted(fast.levels) == sorted(slow.levels)
    for row in slow.levels:
        bids, asks, bid_parsed, ask_parsed = slow.levels[row]
        got = fast.levels[row]
        assert (got[0], got[1]) == (bids, asks) and tuple(map(list, got[2])) == tuple(map(list, bid_parsed)) \
            and tuple(map(list, got[3])) == tuple(map(list, ask_parsed)), row
    for a, b in zip(bookmod.rebuild(fast.frames["depth_updates"], fast.frames["depth_snapshots"], parsed=fast.levels),
                    bookmod.rebuild(slow.frames["depth_updates"], slow.frames["depth_snapshots"], parsed=slow.levels),
                    strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    return fast


def test_columnar_parse_equals_per_message_on_the_whole_capture(tmp_path):
    rows = capture.lines(None)
    fast = _assert_same(capture.write(tmp_path / "all.txt", rows))
    assert sum(fast.events.values()) == len(rows) == 93_954 and fast.rejected.empty
    assert len(fast.levels.rows) == 1  # the snapshot alone went through the per-message path
    assert len(fast.levels.flat.lines) == fast.events["depth_updates"] == 6_551


def _msg(ns, data: dict, wrap: bool = True) -> str:
    return f"{ns} {orjson.dumps({'stream': 's', 'data': data} if wrap else data).decode()}"


T = {"e": "trade", "E": 1723161300001, "T": 1723161300001, "s": "BTCUSDT", "t": 1, "p": "61800.30", "q": "0.006",
     "X": "MARKET", "m": False}
K = {"e": "bookTicker", "u": 5, "s": "BTCUSDT", "b": "61800.20", "B": "2.507", "a": "61800.30", "A": "2.510",
     "T": 1723161300002, "E": 1723161300002}
D = {"e": "depthUpdate", "E": 1723161300003, "T": 1723161300003, "s": "BTCUSDT", "U": 10, "u": 12, "pu": 9,
     "b": [["61800.20", "1.5"], ["61799.0", "0.000"]], "a": [["61800.30", "2"]]}
# Each line is in the exchange's plain form but for one thing, which sends it to the per-message path
# (taken or rejected there as always), or is plain and must be taken column-wise the same.
ODD = [
    _msg("+1723161255000000001", {**T, "t": 101, "s": "ETHUSDT"}),       # a signed receive time (names the file's symbol)
    _msg(1723161255000000002, {**T, "t": 102, "s": "ÉTHUSDT"}),           # a non-ASCII symbol: plain
    _msg(1723161255000000003, {**T, "t": 103, "s": "BTC\\u0055SDT"}),     # an escape in the symbol
    _msg(1723161255000000004, {**T, "t": 104, "p": 61800.3, "q": 2}),     # numbers, not strings
    _msg(1723161255000000005, {**T, "t": "105"}),                         # an id as a string
    _msg(1723161255000000006, {**T, "t": 106, "E": None}),                # no event time: plain
    _msg(1723161255000000007, {**T, "t": 107, "m": "true"}),              # a flag as a string: rejected
    _msg(1723161255000000008, {**T, "t": 108, "m": None}),
    _msg(1723161255000000009, {**T, "t": 109, "p": "1e5"}),               # an exponent
    _msg(1723161255000000010, {**T, "t": 110, "p": "0.000"}),             # zero price: rejected
    _msg(1723161255000000011, {**T, "t": 111, "q": "-1"}),                # negative: rejected
    _msg(1723161255000000012, {**T, "t": 112}).replace('"t":112', '"t":99999999999999999999'),  # past 64 bits
    _msg(1723161255000000013, {**T, "t": 4.5}),                           # not whole: rejected
    _msg(1723161255000000014, {**T, "t": 114, "lastUpdateId": 3}),        # taken as a snapshot
    _msg(1723161255000000015, {**T, "t": 115}, wrap=False),               # no envelope
    _msg(1723161255000000016, {**T, "t": 116}) + "\r",                    # CRLF
    _msg(1723161255000000017, {**T, "t": 117}) + " ",                     # a trailing space
    "",
    "   ",
    _msg(1723161255000000018, {**T, "t": 118}).replace("}}", "}} x"),     # junk after the JSON
    _msg(1723161255000000019, {**T, "t": 119})[:-5],                      # cut short
    _msg(1723161255000000020, {k: v for k, v in K.items() if k != "E"}),  # book ticker without E: uses T
    _msg(1723161255000000021, {**K, "u": 21, "B": "0"}),                  # zero quantity: plain
    _msg(1723161255000000022, {**K, "u": 22, "a": "0"}),                  # zero price: rejected
    _msg(1723161255000000023, {**K, "u": 23, "T": None}),                 # plain
    _msg(1723161255000000024, {**D, "U": 13, "u": 14, "pu": 12, "b": [[61800.1, 2]]}),   # levels as numbers
    _msg(1723161255000000025, {**D, "U": 15, "u": 16, "pu": 14, "a": [["61800.4", "1", "x"]]}),  # 3-element level
    _msg(1723161255000000026, {**D, "U": 18, "u": 17, "pu": 16}),                         # U > u: rejected
    _msg(1723161255000000027, {**D, "U": 19, "u": 20, "pu": None, "b": []}),              # no pu, no bids: plain
    _msg(1723161255000000028, {**D, "U": 21, "u": 22, "pu": 20, "b": [["0", "1"]]}),      # zero price: rejected
    _msg(1723161255000000029, {**D, "U": 23, "u": 24, "pu": 22, "b": [["61800.1"]]}),     # half a level: rejected
    _msg(1723161255000000030, {**D, "U": 25, "u": 26, "pu": 24, "T": None}),
    _msg(1723161255000000031, {**D, "U": 27, "u": 28, "pu": 26, "b": [["61800.10", "1"], ["61800.10", "0"]]}),
    "x {}",
    "1723161255000000032 [1, 2]",
]


@pytest.mark.parametrize("where", ["first", "middle"])
def test_columnar_parse_equals_per_message_on_odd_lines(tmp_path, where):
    head = capture.lines(2_500)
    snapshot = next(r for r in head if "lastUpdateId" in r)
    head.remove(snapshot)
    # first: the snapshot (which names no symbol), then the odd lines, the first of which (taken by the
    # per-message path) names the symbol the snapshot gets
    rows = [snapshot, *ODD, *head] if where == "first" else [*head[:1200], *ODD, snapshot, *head[1200:]]
    fast = _assert_same(capture.write(tmp_path / "odd.txt", rows))
    assert fast.parameters["symbol"] == ("ETHUSDT" if where == "first" else "BTCUSDT")
    assert len(fast.rejected) >= 10 and fast.rejected["row_number"].is_unique
    assert "ÉTHUSDT" in set(fast.frames["trades"]["symbol"])
    # most lines still went the columnar way
    assert len(fast.levels.flat.lines) > 0.9 * fast.events["depth_updates"]


def test_binary_copy_is_the_sinks_capability(tmp_path, postgres_target):
    with open_sink(postgres_target, tables=ALL_TICK_TABLES) as sink, sink.transaction() as tx:
        assert tx.binary_copy
        ticks = binary_copies(tx)
        assert isinstance(ticks, BinaryCopyTransaction) and ticks.conn is tx.conn
        assert binary_copies(ticks) is ticks
    duck = DuckDBSink(str(tmp_path / "w.duckdb"))
    try:
        with duck.transaction() as tx:
            assert binary_copies(tx) is tx  # DuckDB does not say it can: its transaction as it is
    finally:
        duck.close()
