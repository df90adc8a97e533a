"""The file loader's fast paths give what the per-message paths give, to the bit:

- the book fold of a whole file on a price grid (`book.rebuild`, `_GridSide`) equals the live fold on
  sorted lists (`BookBuilder` with `_Side`, what `mwh stream binance` uses), on the real capture and on
  a small capture made to hit the edges (a price twice in one diff, the best level removed, a side
  emptied, a gap and a resync from a second snapshot, a diff before any snapshot);
- the parse of a capture (trades and book tickers appended without `TickRows.add`) equals feeding
  every line through `TickRows.add`, on the real capture with odd and broken messages mixed in.
No database: pure functions, a few seconds."""

from __future__ import annotations

import json

import orjson
import pandas as pd
import pytest

from market_warehouse.loaders import book as bookmod
from market_warehouse.loaders.sources.binance_ws import TICK_FORMATS, TickRows, tick_batch
from tests.python.microstructure import capture


def _parse(path):
    return TICK_FORMATS["binance-ws"](path)


def _reference_fold(batch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored diffs and snapshots fed in line order to one sorted-list book per symbol."""
    du, sn = batch.frames["depth_updates"], batch.frames["depth_snapshots"]
    feed = sorted([(int(r), 1, i) for i, r in enumerate(du["_row"])] + [(int(r), 0, i) for i, r in enumerate(sn["_row"])])
    books: dict[tuple, bookmod.BookBuilder] = {}
    for _, kind, i in feed:
        row = (sn if kind == 0 else du).iloc[i]
        book = books.setdefault((row["symbol"], row["exchange"]), bookmod.BookBuilder(row["symbol"], row["exchange"]))
        if kind == 0:
            book.snapshot(row["ts"], int(row["last_update_id"]), json.loads(row["bids"]), json.loads(row["asks"]))
        else:
            prev = row["prev_final_update_id"]
            book.diff(bookmod.Diff(row["ts"], int(row["first_update_id"]), int(row["final_update_id"]),
                                   None if pd.isna(prev) else int(prev), json.loads(row["bids"]),
                                   json.loads(row["asks"])))
    parts = []
    for key in sorted(books):
        books[key].finish()
        parts.append(books[key].take())
    return (pd.concat([p[0] for p in parts], ignore_index=True), pd.concat([p[1] for p in parts], ignore_index=True))


def _assert_same_fold(batch) -> pd.DataFrame:
    states, events = bookmod.rebuild(batch.frames["depth_updates"], batch.frames["depth_snapshots"],
                                     parsed=batch.levels)
    ref_states, ref_events = _reference_fold(batch)
    pd.testing.assert_frame_equal(states, ref_states, check_exact=True)
    pd.testing.assert_frame_equal(events, ref_events, check_exact=True)
    return states


def test_grid_fold_equals_sorted_lists_on_the_capture(tmp_path):
    path = capture.write(tmp_path / "head.txt", capture.lines(12_000))
    states = _assert_same_fold(_parse(path))
    assert len(states) > 500 and states["bid_depth_50bps"].notna().all()


def _line(ns: int, data: dict, stream: str = "btcusdt@depth@0ms") -> str:
    return f"{ns} {orjson.dumps({'stream': stream, 'data': data}).decode()}"


def _diff(u_first, u_last, pu, bids, asks, t=1723161300000):
    return {"e": "depthUpdate", "E": t + u_last, "T": t + u_last, "s": "BTCUSDT", "U": u_first, "u": u_last,
            "pu": pu, "b": bids, "a": asks}


def test_grid_fold_equals_sorted_lists_on_the_edges(tmp_path):
    snap = {"lastUpdateId": 100, "E": 1723161300000,
            "bids": [["100.0", "1.5"], ["99.9", "2"], ["99.5", "0.3"], ["98.0", "7"]],
            "asks": [["100.1", "1"], ["100.2", "0.25"], ["101.0", "4"], ["150.0", "9"]]}
    lines = [
        _line(1, _diff(90, 95, 89, [["100.0", "9"]], [])),                      # before any snapshot
        f"2 {orjson.dumps(snap).decode()}",
        _line(3, _diff(99, 101, 98, [["100.0", "0"], ["99.95", "0.1"]], [["100.1", "0.000"]])),  # best goes
        _line(4, _diff(102, 103, 101, [["99.95", "1"], ["99.95", "0"], ["99.7", "2"]],            # twice in one diff
                       [["100.15", "3"], ["100.15", "4.5"]])),
        _line(5, _diff(104, 104, 103, [], [["100.15", "0"], ["100.2", "0"], ["101.0", "0"], ["150.0", "0"]])),  # asks empty
        _line(6, _diff(105, 106, 104, [["99.8", "0.001"]], [["100.4", "1.25"]])),
        _line(7, _diff(110, 112, 109, [["99.9", "0"]], [])),                    # gap: pu 109 != 106
        _line(8, _diff(113, 114, 112, [["99.0", "1"]], [])),                    # buffered while invalid
        f"9 {orjson.dumps({**snap, 'lastUpdateId': 113, 'E': 1723161300200}).decode()}",        # resync
        _line(10, _diff(114, 116, 114, [["100.05", "2"]], [["100.1", "3"], ["100.05000", "0"]])),
        _line(11, _diff(117, 117, 116, [["100.05", "0"], ["100.0", "0"], ["99.9", "0"], ["99.5", "0"],
                                        ["98.0", "0"], ["99.0", "0"], ["99.8", "0"], ["99.7", "0"]], [])),  # bids empty
        _line(12, _diff(118, 118, 117, [["97.5", "0.5"]], [["100.3", "0"]])),
    ]
    path = capture.write(tmp_path / "edges.txt", lines)
    states = _assert_same_fold(_parse(path))
    assert states["best_ask"].isna().any() and states["best_bid"].isna().any()  # the emptied sides
    assert len(states) == 8


ODD_LINES = [
    '1 {"stream":"x@trade","data":{"e":"trade","E":1,"T":1723161300001,"s":"","t":1,"p":"1","q":"1"}}',  # no symbol
    '2 {"stream":"x@trade","data":{"e":"trade","T":1723161300001,"s":"BTCUSDT","t":2,"p":"1"}}',          # no q
    '3 {"stream":"x@trade","data":{"e":"trade","T":1723161300001,"s":"BTCUSDT","t":3,"p":"1","q":"2","m":"yes"}}',
    '4 {"stream":"x@trade","data":{"e":"trade","T":"1723161300001","s":"BTCUSDT","t":4.5,"p":1.5,"q":"2"}}',
    '5 {"e":"trade","T":1723161300002,"s":"BTCUSDT","t":5,"p":"1","q":"2","m":false}',                     # no envelope
    '6 {"stream":"x@bookTicker","data":{"e":"bookTicker","u":6,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1",'
    '"T":1723161300003}}',                                                                                  # no E: T
    '7 {"stream":"x@bookTicker","data":{"e":"bookTicker","E":null,"u":7,"s":"BTCUSDT","b":"1","B":"1","a":"2",'
    '"A":"-1"}}',
    '8 {"stream":"x@trade","data":{"e":"trade","lastUpdateId":5,"T":1,"s":"BTCUSDT","t":8,"p":"1","q":"1"}}',
    '9 {"stream":"x@trade","data":[1,2]}',
    '10 [1, 2]',
    'x {"a": 1}',
    '',
    '11 {"stream":"x@trade","data":{"e":"trade","T":1723161300004,"s":"BTCUSDT","t":9,"p":"0","q":"1"}}',
]


@pytest.mark.parametrize("odd_first", [True, False])
def test_parse_equals_the_per_message_path(tmp_path, odd_first):
    head = capture.lines(3_000)
    rows = ODD_LINES + head if odd_first else head[:1500] + ODD_LINES + head[1500:]
    path = capture.write(tmp_path / "odd.txt", rows)
    fast = _parse(path)
    ref = TickRows()
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        ns, _, body = line.partition(" ")
        try:
            received, message = int(ns), orjson.loads(body)
        except ValueError as exc:
            ref.reject(number, "unknown", line, f"not `<receive ns> <json>`: {exc}")
            continue
        ref.add(number, received, message, line)
    slow = tick_batch(ref, {"symbol": ref.symbol, "exchange": ref.exchange})
    assert fast.parameters == slow.parameters
    assert dict(fast.events) == dict(slow.events)
    for name, frame in slow.frames.items():
        pd.testing.assert_frame_equal(fast.frames[name], frame, check_exact=True)
    key = ["row_number", "target_table"]
    pd.testing.assert_frame_equal(fast.rejected.sort_values(key).reset_index(drop=True),
                                  slow.rejected.sort_values(key).reset_index(drop=True))
    assert len(slow.rejected) >= 8
