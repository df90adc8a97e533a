"""The L2 order book rebuilt from a REST snapshot and the diff stream, by Binance's rules:

1. buffer the diffs; take a snapshot (`lastUpdateId`);
2. drop buffered diffs with `u` < lastUpdateId;
3. the first diff applied must straddle the snapshot: `U` <= lastUpdateId + 1 and `u` >= lastUpdateId
   (or continue exactly from it: `pu` == lastUpdateId);
4. after that, each diff's `pu` must equal the previous diff's `u`.

A break of rule 3 or 4 is a data-quality event (`no_straddle`, `gap`): the book is invalid, no state
is emitted, and the diffs are buffered until the next snapshot re-syncs it. Diffs that never see a
usable snapshot are one `unsynced` event. Nothing is continued silently.

SQL could do this only with a recursive walk over every level of every diff; here it is a sorted
array per side (bisect), so a 6.5k-diff capture with 1,000-level snapshots takes well under a second.
"""

from __future__ import annotations

import bisect
import json
import os
from bisect import bisect_left  # the rebuild's hot loop: a local name, no attribute lookup
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from market_warehouse.loaders.sources.common import compact_json

DEFAULT_LEVELS = 10
BUFFER_LIMIT = 100_000  # diffs kept while waiting for a snapshot; older ones are counted, not kept


def book_levels() -> int:
    """How many levels per side the states keep (MWH_BOOK_LEVELS, default 10)."""
    raw = os.environ.get("MWH_BOOK_LEVELS", str(DEFAULT_LEVELS))
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"MWH_BOOK_LEVELS={raw!r}: not a whole number of levels") from None
    if not 1 <= n <= 1000:
        raise ValueError(f"MWH_BOOK_LEVELS={n}: must be between 1 and 1000")
    return n


class _Side:
    """Price -> qty with the prices kept sorted (bids negated, so best is always first) and the
    quantities in a parallel list (so that a depth is one C-level sum over a slice)."""

    def __init__(self, sign: int):
        self.sign = sign
        self.keys: list[float] = []
        self.qtys: list[float] = []
        self.text: dict[float, tuple[str, str]] = {}

    def clear(self) -> None:
        self.keys, self.qtys, self.text = [], [], {}

    def update(self, levels, parsed: tuple | None = None) -> None:
        """Apply every [price, qty] (strings as sent) of `levels` in order: a quantity of 0 removes the
        price, any other sets it. `parsed`: their (prices, qtys) as floats when the parser has them
        already. The hot loop of the rebuild, kept inline."""
        if parsed is None:
            parsed = ([float(lvl[0]) for lvl in levels], [float(lvl[1]) for lvl in levels])
        keys, qtys, text, sign = self.keys, self.qtys, self.text, self.sign
        for (price_s, qty_s), price, qty in zip(levels, parsed[0], parsed[1], strict=True):
            key = sign * price
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                if qty == 0:
                    del keys[i], qtys[i], text[key]
                    continue
                qtys[i] = qty
            elif qty == 0:
                continue
            else:
                keys.insert(i, key)
                qtys.insert(i, qty)
            text[key] = (price_s, qty_s)

    def best(self) -> tuple[float | None, float | None]:
        if not self.keys:
            return None, None
        return self.sign * self.keys[0], self.qtys[0]

    def top(self, n: int) -> str:
        text = self.text
        return compact_json([text[k] for k in self.keys[:n]])

    def depth_within(self, limit_price: float) -> float:
        """Quantity at prices no worse than limit_price."""
        return float(sum(self.qtys[:bisect.bisect_right(self.keys, self.sign * limit_price)]))


@dataclass
class Diff:
    ts: pd.Timestamp
    first: int
    final: int
    prev: int | None
    bids: list
    asks: list
    bid_parsed: tuple | None = None  # (prices, qtys) as floats, when the parser has them
    ask_parsed: tuple | None = None


class BookBuilder:
    """One symbol's book. Feed `snapshot` and `diff` in receive order; take `states` and `events`."""

    def __init__(self, symbol: str, exchange: str, levels: int | None = None):
        self.symbol, self.exchange = symbol, exchange
        self.levels = levels or book_levels()
        self.bids, self.asks = _Side(-1), _Side(1)
        self.status = "unsynced"  # unsynced -> awaiting (snapshot taken) -> valid; invalid after a break
        self.synced_id: int | None = None
        self.last_u: int | None = None
        self.buffer: deque[Diff] = deque()
        self.overflow = 0
        self.states: list[tuple] = []
        self.events: list[dict] = []
        self._open_event: dict | None = None  # the break the current invalid period counts diffs for
        self._first_unsynced: Diff | None = None

    # ---- input -------------------------------------------------------------------------------
    def snapshot(self, ts: pd.Timestamp, last_update_id: int, bids: list, asks: list,
                 bid_parsed: tuple | None = None, ask_parsed: tuple | None = None) -> None:
        self.bids.clear()
        self.asks.clear()
        self.bids.update(bids, bid_parsed)
        self.asks.update(asks, ask_parsed)
        self.synced_id, self.last_u, self.status = last_update_id, None, "awaiting"
        self._snapshot_ts = ts
        self._open_event = None
        self._first_unsynced = None
        pending, self.buffer = list(self.buffer), deque()
        self.overflow = 0
        for d in pending:
            self.diff(d)

    def expect_snapshot(self) -> None:
        """A snapshot has been asked for (the stream reconnected): buffer the diffs from here on, so
        that the snapshot, whenever it comes, finds the diffs after it (Binance's procedure)."""
        if self.status in ("valid", "awaiting"):
            self.status, self._open_event = "unsynced", None

    def diff(self, d: Diff) -> None:
        if self.status in ("unsynced", "invalid"):
            if self.status == "unsynced" and self._first_unsynced is None:
                self._first_unsynced = d
            self.buffer.append(d)
            if len(self.buffer) > BUFFER_LIMIT:
                self.buffer.popleft()
                self.overflow += 1
            if self._open_event is not None:
                self._open_event["diffs_affected"] += 1
            return
        if self.status == "awaiting":
            if d.final < self.synced_id:
                return  # older than the snapshot: already in it
            # Straddles the snapshot, or continues exactly from it (pu == lastUpdateId: a snapshot
            # taken on a diff boundary, as when the diff it ends with came before it).
            if not ((d.first <= self.synced_id + 1 and d.final >= self.synced_id) or d.prev == self.synced_id):
                self._break(d, "no_straddle", None, None,
                            f"first diff after snapshot {self.synced_id} is U={d.first}..u={d.final}: it does "
                            f"not straddle lastUpdateId + 1; book invalid until the next snapshot")
                return
            self.events.append(self._event(d.ts, self.synced_id, "synced", None, None, 0,
                                           f"book rebuilt from snapshot {self.synced_id}, first diff "
                                           f"U={d.first}..u={d.final}"))
            self.status = "valid"
        elif d.prev is not None and d.prev != self.last_u:
            self._break(d, "gap", self.last_u, d.prev,
                        f"diff u={d.final} has pu={d.prev}, the previous diff's u was {self.last_u}: "
                        f"{'missed' if d.prev > self.last_u else 'out-of-order'} updates; book invalid until "
                        f"the next snapshot")
            return
        self._apply(d)

    def finish(self) -> None:
        """The input ended: diffs still waiting for a snapshot are one `unsynced` event."""
        if self.status == "unsynced" and self.buffer:
            first = self._first_unsynced or self.buffer[0]
            n = len(self.buffer) + self.overflow
            self.events.append(self._event(first.ts, first.final, "unsynced", None, None, n,
                                           f"{n} diffs with no depth snapshot to rebuild the book from"))
            self.buffer.clear()

    # ---- internals ---------------------------------------------------------------------------
    def _event(self, ts, update_id, event, expected, got, affected, detail) -> dict:
        return {"ts": ts, "symbol": self.symbol, "exchange": self.exchange, "update_id": int(update_id),
                "event": event, "expected_prev_update_id": expected, "prev_update_id": got,
                "diffs_affected": affected, "detail": detail}

    def _break(self, d: Diff, event: str, expected, got, detail: str) -> None:
        self.status = "invalid"
        self._open_event = self._event(d.ts, d.final, event, expected, got, 1, detail)
        self.events.append(self._open_event)
        self.buffer.append(d)

    def _apply(self, d: Diff) -> None:
        self.bids.update(d.bids, d.bid_parsed)
        self.asks.update(d.asks, d.ask_parsed)
        self.last_u = d.final
        bid, bid_q = self.bids.best()
        ask, ask_q = self.asks.best()
        depth = [None] * 4
        if bid is not None and ask is not None:
            mid = (bid + ask) / 2
            depth = [self.bids.depth_within(mid * (1 - 0.001)), self.asks.depth_within(mid * (1 + 0.001)),
                     self.bids.depth_within(mid * (1 - 0.005)), self.asks.depth_within(mid * (1 + 0.005))]
        self.states.append((d.ts, self.symbol, self.exchange, d.final, self.synced_id, bid, bid_q, ask, ask_q,
                            self.bids.top(self.levels), self.asks.top(self.levels), *depth))

    def full_book(self) -> dict:
        """The whole book as a REST snapshot would give it: {"lastUpdateId", "bids", "asks"}."""
        return {"lastUpdateId": self.last_u if self.last_u is not None else self.synced_id,
                "bids": [list(self.bids.text[k]) for k in self.bids.keys],
                "asks": [list(self.asks.text[k]) for k in self.asks.keys]}

    # ---- output ------------------------------------------------------------------------------
    STATE_COLUMNS: ClassVar[list[str]] = ["ts", "symbol", "exchange", "update_id", "synced_update_id", "best_bid", "best_bid_qty",
                     "best_ask", "best_ask_qty", "bid_levels", "ask_levels", "bid_depth_10bps",
                     "ask_depth_10bps", "bid_depth_50bps", "ask_depth_50bps"]
    EVENT_COLUMNS: ClassVar[list[str]] = ["ts", "symbol", "exchange", "update_id", "event", "expected_prev_update_id",
                     "prev_update_id", "diffs_affected", "detail"]

    def take(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The states and events produced since the last call (and forget them)."""
        states = pd.DataFrame(self.states, columns=self.STATE_COLUMNS)
        for c in ("best_bid", "best_bid_qty", "best_ask", "best_ask_qty", "bid_depth_10bps", "ask_depth_10bps",
                  "bid_depth_50bps", "ask_depth_50bps"):
            states[c] = states[c].astype("float64")
        for c in ("update_id", "synced_update_id"):
            states[c] = states[c].astype("int64")
        states["ts"] = pd.to_datetime(states["ts"], utc=True)
        events = pd.DataFrame(self.events, columns=self.EVENT_COLUMNS)
        for c in ("expected_prev_update_id", "prev_update_id", "diffs_affected"):
            events[c] = events[c].astype("Int64")
        events["update_id"] = events["update_id"].astype("int64")
        events["ts"] = pd.to_datetime(events["ts"], utc=True)
        self.states, self.events = [], []
        return states, events


def rebuild(depth_updates: pd.DataFrame, snapshots: pd.DataFrame, levels: int | None = None,
            parsed: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Book states and sequence events of a whole source, per symbol. Both frames must carry `_row`
    (receive order: the line number): a snapshot applies to the diffs buffered before it.
    `parsed`: line number -> the levels as the parser read them (`TickBatch.levels`); lines not in it
    are parsed from the frames' JSON text."""
    parsed = parsed or {}
    states, events = [], []
    keys = sorted(set(map(tuple, depth_updates[["symbol", "exchange"]].drop_duplicates().to_numpy()))
                  | set(map(tuple, snapshots[["symbol", "exchange"]].drop_duplicates().to_numpy())))
    for symbol, exchange in keys:
        book = BookBuilder(symbol, exchange, levels)
        du = depth_updates[(depth_updates["symbol"] == symbol) & (depth_updates["exchange"] == exchange)]
        sn = snapshots[(snapshots["symbol"] == symbol) & (snapshots["exchange"] == exchange)]
        feed = sorted([(int(r), 1, i) for i, r in enumerate(du["_row"])]
                      + [(int(r), 0, i) for i, r in enumerate(sn["_row"])])
        snaps = list(zip(sn["ts"], sn["last_update_id"], sn["bids"], sn["asks"], strict=True))
        diffs = list(zip(du["ts"], du["first_update_id"], du["final_update_id"], du["prev_final_update_id"],
                         du["bids"], du["asks"], strict=True))
        for row, kind, i in feed:
            lv = parsed.get(row)
            if kind == 0:
                ts, last, bids, asks = snaps[i]
                if lv is None:
                    book.snapshot(ts, int(last), json.loads(bids), json.loads(asks))
                else:
                    book.snapshot(ts, int(last), *lv)
            else:
                ts, first, final, prev, bids, asks = diffs[i]
                prev = None if prev is pd.NA or prev is None or prev != prev else int(prev)
                if lv is None:
                    lv = (json.loads(bids), json.loads(asks))
                book.diff(Diff(ts, int(first), int(final), prev, *lv))
        book.finish()
        s, e = book.take()
        states.append(s)
        events.append(e)
    if not states:
        return BookBuilder("", "", levels or DEFAULT_LEVELS).take()
    return pd.concat(states, ignore_index=True), pd.concat(events, ignore_index=True)
