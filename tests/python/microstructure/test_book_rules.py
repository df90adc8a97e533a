"""The book rebuild's sequence rules (market_warehouse/loaders/book.py), on diffs cut from the real
capture: stale diffs dropped, the straddle rule, a gap invalidates the book until the next snapshot,
diffs with no snapshot are one `unsynced` event. Pure Python: no database."""

from __future__ import annotations

import json

from market_warehouse.loaders.book import BookBuilder, Diff
from tests.python.microstructure import capture


def _capture(n: int = 3000):
    snap, diffs = None, []
    for line in capture.lines(n):
        m = json.loads(line.split(" ", 1)[1])
        if "lastUpdateId" in m:
            snap = m
        elif m["data"]["e"] == "depthUpdate":
            d = m["data"]
            diffs.append(Diff(d["E"], d["U"], d["u"], d["pu"], d["b"], d["a"]))
    return snap, diffs


def _feed(book: BookBuilder, snap, diffs, snapshot_after: int = 0):
    for i, d in enumerate(diffs):
        if i == snapshot_after:
            book.snapshot(None, snap["lastUpdateId"], snap["bids"], snap["asks"])
        book.diff(d)
    book.finish()
    return book.take()


def test_rules_on_the_capture():
    snap, diffs = _capture()
    # In receive order the snapshot comes after a few diffs: they are buffered, the stale ones dropped.
    states, events = _feed(BookBuilder("BTCUSDT", "BINANCE", 5), snap, diffs, snapshot_after=8)
    stale = [d for d in diffs if d.final < snap["lastUpdateId"]]
    assert len(stale) == 4
    assert len(states) == len(diffs) - len(stale)
    assert list(events["event"]) == ["synced"]
    assert (states["best_bid"] < states["best_ask"]).all()
    assert len(json.loads(states["bid_levels"].iloc[0])) == 5

    # A diff left out: `gap` at the next one; no state from there on (no later snapshot) and the
    # diffs not applied are counted.
    cut = 100
    states2, events2 = _feed(BookBuilder("BTCUSDT", "BINANCE", 5), snap, diffs[:cut] + diffs[cut + 1:], 8)
    gap = events2[events2["event"] == "gap"].iloc[0]
    assert (gap["update_id"], gap["expected_prev_update_id"], gap["prev_update_id"]) == (
        diffs[cut + 1].final, diffs[cut - 1].final, diffs[cut].final)
    assert gap["diffs_affected"] == len(diffs) - cut - 1
    assert states2["update_id"].max() == diffs[cut - 1].final
    pd_equal = states2.reset_index(drop=True).equals(states.iloc[:len(states2)].reset_index(drop=True))
    assert pd_equal  # identical up to the gap

    # A resync from the exchange's book at a later diff: the states from there equal the unbroken ones.
    full = BookBuilder("BTCUSDT", "BINANCE", 5)
    assert len(diffs) > cut + 80
    for i, d in enumerate(diffs[:cut + 50]):
        if i == 8:
            full.snapshot(None, snap["lastUpdateId"], snap["bids"], snap["asks"])
        full.diff(d)
    later = full.full_book()
    book = BookBuilder("BTCUSDT", "BINANCE", 5)
    for i, d in enumerate(diffs):
        if i == 8:
            book.snapshot(None, snap["lastUpdateId"], snap["bids"], snap["asks"])
        if i == cut:
            continue  # lost
        if i == cut + 60:
            book.snapshot(None, later["lastUpdateId"], later["bids"], later["asks"])
        book.diff(d)
    states3, events3 = book.take()
    assert list(events3["event"]) == ["synced", "gap", "synced"]
    after = states3[states3["update_id"] >= later["lastUpdateId"]].reset_index(drop=True)
    want = states[states["update_id"] >= later["lastUpdateId"]].reset_index(drop=True)
    assert after.drop(columns="synced_update_id").equals(want.drop(columns="synced_update_id"))

    # The snapshot's first diff does not straddle it: `no_straddle`, invalid until the next snapshot.
    late = [d for d in diffs if d.final > snap["lastUpdateId"]][5:]
    states4, events4 = _feed(BookBuilder("BTCUSDT", "BINANCE", 5), snap, late, 0)
    assert list(events4["event"]) == ["no_straddle"] and states4.empty

    # Diffs and never a snapshot: one `unsynced` event counting them.
    b = BookBuilder("BTCUSDT", "BINANCE", 5)
    for d in diffs[:10]:
        b.diff(d)
    b.finish()
    states5, events5 = b.take()
    assert states5.empty and list(events5["event"]) == ["unsynced"] and events5["diffs_affected"].iloc[0] == 10
