"""The L2 order book rebuilt from a REST snapshot and the diff stream, by Binance's rules:

1. buffer the diffs; take a snapshot (`lastUpdateId`);
2. drop buffered diffs with `u` < lastUpdateId;
3. the first diff applied must straddle the snapshot: `U` <= lastUpdateId + 1 and `u` >= lastUpdateId
   (or continue exactly from it: `pu` == lastUpdateId);
4. after that, each diff's `pu` must equal the previous diff's `u`.

A break of rule 3 or 4 is a data-quality event (`no_straddle`, `gap`): the book is invalid, no state
is emitted, and the diffs are buffered until the next snapshot re-syncs it. Diffs that never see a
usable snapshot are one `unsynced` event. Nothing is continued silently.

SQL could do this only with a recursive walk over every level of every diff. Live (the stream), each
side is a sorted list (bisect), since the prices to come are not known. A whole file (`rebuild`) knows
them all before the fold: each side is then a numpy array over every price the file quotes on it
(`_GridSide`), and a diff is a few array operations instead of a Python step per level. Both give
the same states, to the bit (tests/python/microstructure/test_book_grid.py).
"""

from __future__ import annotations

import bisect
import os
from bisect import bisect_left  # the rebuild's hot loop: a local name, no attribute lookup
from collections import deque
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import ClassVar

import numpy as np
import orjson
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


def level_floats(levels) -> tuple[list[float], list[float]]:
    """The (prices, quantities) of `[[price, qty], ...]` levels as floats, in order."""
    return [float(lvl[0]) for lvl in levels], [float(lvl[1]) for lvl in levels]


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
            parsed = level_floats(levels)
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

    def depths_within(self, near: float, far: float) -> tuple[float, float]:
        """`depth_within` of a near and a farther limit."""
        return self.depth_within(near), self.depth_within(far)


_accumulate = np.add.accumulate  # np.cumsum without its wrapper: sequential, the same floats


class _GridSide:
    """One side of the book over a fixed price grid: `keys`, every price (times the side's sign, as
    `_Side`'s keys) the source quotes on this side, sorted, so best is the lowest index holding a
    quantity. Same interface and results as `_Side`; `update` takes the levels as `grid_levels` made
    them: (grid indexes, qtys, the indexes set (qty not 0), their price and qty texts, the lowest of
    them, the levels in order when a price repeats within the diff, the lowest index set or removed).

    `top` keeps its last answer and gives it again while no update touched an index at or before the
    n-th level held: the same string, since nothing it reads changed (about 1 call in 5 on the real
    capture; the depths within 10/50 bps change with almost every diff, so they are not kept)."""

    def __init__(self, sign: int, keys: np.ndarray, vocab: np.ndarray | None = None):
        self.sign, self.grid = sign, keys
        self.grid_list = keys.tolist()  # bisect on a list: a search costs less than a numpy call
        n = len(keys)
        self.qty = np.zeros(n)
        # each price's level as sent, (price text, qty text): codes into `vocab` when given (what
        # `rebuild` gives), else the strings themselves
        self.vocab = vocab
        self.text = np.zeros((n, 2), dtype=np.int64) if vocab is not None else np.empty((n, 2), dtype=object)
        self.first = n  # index of the best level; n: the side is empty
        self._top: tuple | None = None  # (n, the answer, the index of the n-th level held, or len(grid))

    def clear(self) -> None:
        self.qty[:] = 0.0
        self.first = len(self.grid)
        self._top = None

    def update(self, levels, parsed: tuple) -> None:
        idx, qty, where, texts, lowest, in_order, touched = parsed
        q = self.qty
        if self._top is not None and touched <= self._top[2]:
            self._top = None
        if in_order is not None:  # a price twice in one diff: level by level, as `_Side.update`
            for i, v, p, t in in_order:
                q[i] = v
                if v != 0:
                    self.text[i] = p, t
            nz = q.nonzero()[0]
            self.first = int(nz[0]) if len(nz) else len(q)
            return
        q[idx] = qty
        first = self.first
        if len(where):
            self.text[where] = texts
            if lowest < first:
                first = lowest
        if first < len(q) and q[first] == 0:  # the best level went: the next one holding a quantity
            ahead = q[first:first + 64].nonzero()[0]
            if not len(ahead):
                ahead = q[first:].nonzero()[0]
            first = first + int(ahead[0]) if len(ahead) else len(q)
        self.first = first

    def best(self) -> tuple[float | None, float | None]:
        if self.first >= len(self.grid):
            return None, None
        return self.sign * float(self.grid[self.first]), float(self.qty[self.first])

    def top(self, n: int) -> str:
        cached = self._top
        if cached is not None and cached[0] == n:
            return cached[1]
        q, first = self.qty, self.first
        at = q[first:first + 8 * n].nonzero()[0]
        if len(at) < n:
            at = q[first:].nonzero()[0]
        at = (at[:n] + first).tolist()
        texts = self.text[at]
        out = compact_json((self.vocab[texts] if self.vocab is not None else texts).tolist())
        self._top = (n, out, at[-1] if len(at) == n else len(q))
        return out

    def depths_within(self, near: float, far: float) -> tuple[float, float]:
        """`_Side.depths_within`: one sequential cumulative sum, best first (the same floats, bit for
        bit, as summing the levels in order; empty prices add 0)."""
        first, grid, sign = self.first, self.grid_list, self.sign
        a, b = bisect.bisect_right(grid, sign * near), bisect.bisect_right(grid, sign * far)
        if b <= first:
            return 0.0, 0.0
        # over every price of the grid from the best one (held: not 0): adding an empty price's 0.0 to
        # a positive sum changes no bit, and costs less than picking the held levels out first
        c = _accumulate(self.qty[first:b])
        return (float(c[a - first - 1]) if a > first else 0.0), float(c[-1])


def grid_levels(rows: list[tuple[list, tuple]], sign: int) -> tuple[np.ndarray, list[tuple]]:
    """One side's levels of every diff and snapshot of a source, put on one price grid: the sorted
    keys (sign * price) and, per row, what `_GridSide.update` takes. `rows`: (levels as sent,
    (prices, qtys) as floats)."""
    sizes = np.fromiter((len(lv) for lv, _ in rows), dtype=np.int64, count=len(rows))
    prices = np.fromiter(chain.from_iterable(p for _, (p, _q) in rows), dtype=np.float64, count=int(sizes.sum()))
    qtys = np.fromiter(chain.from_iterable(q for _, (_p, q) in rows), dtype=np.float64, count=len(prices))
    flat = list(chain.from_iterable(lv for lv, _ in rows))
    price_s = np.empty(len(flat), dtype=object)
    qty_s = np.empty(len(flat), dtype=object)
    price_s[:] = list(map(itemgetter(0), flat))
    qty_s[:] = list(map(itemgetter(1), flat))
    return grid_levels_flat(sizes, prices, qtys, price_s, qty_s, sign)


def grid_levels_flat(sizes: np.ndarray, prices: np.ndarray, qtys: np.ndarray, price_s: np.ndarray,
                     qty_s: np.ndarray, sign: int) -> tuple[np.ndarray, list[tuple]]:
    """`grid_levels` of rows given flat: row k's levels are the next sizes[k] of prices, qtys and their
    texts (price_s, qty_s: object arrays of the strings as sent)."""
    n_rows = len(sizes)
    keys = np.unique(sign * prices)
    idx = np.searchsorted(keys, sign * prices)
    bounds = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    # rows where a price repeats: adjacent equal (row, index) pairs once sorted
    row_of = np.repeat(np.arange(n_rows), sizes)
    pair = np.sort(row_of * (len(keys) + 1) + idx)
    repeated = set(np.unique(pair[1:][pair[1:] == pair[:-1]] // (len(keys) + 1)).tolist())
    # the levels that set a quantity (not 0), per row: their indexes, texts and the lowest index
    nz = qtys != 0
    nz_bounds = np.concatenate([[0], np.cumsum(nz)])[bounds]
    where = idx[nz]
    pairs = np.stack([price_s[nz], qty_s[nz]], axis=1) if len(where) else np.empty((0, 2), dtype=price_s.dtype)
    # each row's lowest index that sets a quantity (len(keys): none), at once
    lowest = np.full(n_rows, len(keys), dtype=np.int64)
    has = nz_bounds[1:] > nz_bounds[:-1]
    if len(where):
        lowest[has] = np.minimum.reduceat(where, nz_bounds[:-1][has])
    # each row's lowest index set or removed (len(keys): none): what `_GridSide.top`'s kept answer checks
    touched = np.full(n_rows, len(keys), dtype=np.int64)
    if len(idx):
        touched[sizes > 0] = np.minimum.reduceat(idx, bounds[:-1][sizes > 0])
    out = []
    for k, (a, b, c, d, low, low_any) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(),
                                                       nz_bounds[:-1].tolist(), nz_bounds[1:].tolist(),
                                                       lowest.tolist(), touched.tolist(), strict=True)):
        in_order = (list(zip(idx[a:b].tolist(), qtys[a:b].tolist(), price_s[a:b], qty_s[a:b], strict=True))
                    if k in repeated else None)
        out.append((idx[a:b], qtys[a:b], where[c:d], pairs[c:d], low, in_order, low_any))
    return keys, out


def _encode(vocab: np.ndarray | None, texts, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`texts` (`count` strings) as codes into `vocab` (object array of strings; None: empty), extended
    with the texts it lacks: (the vocabulary, the codes)."""
    vocab = vocab if vocab is not None else np.empty(0, dtype=object)
    if not count:
        return vocab, np.empty(0, dtype=np.int64)
    index = {t: i for i, t in enumerate(vocab.tolist())}
    new: list[str] = []

    def code(text: str) -> int:
        at = index.get(text)
        if at is None:
            at = index[text] = len(vocab) + len(new)
            new.append(text)
        return at

    codes = np.fromiter(map(code, texts), dtype=np.int64, count=count)
    if new:
        added = np.empty(len(new), dtype=object)
        added[:] = new
        vocab = np.concatenate([vocab, added])
    return vocab, codes


def _gather(parts: list[tuple], spans: np.ndarray, sizes: np.ndarray) -> tuple:
    """Rows' levels taken from flat pools: `parts`, per pool (prices, qtys, price texts, qty texts),
    concatenated; row k is the `sizes[k]` levels from `spans[k]` in that concatenation."""
    pool = [np.concatenate([p[i] for p in parts]) if len(parts) > 1 else parts[0][i] for i in range(4)]
    total = int(sizes.sum())
    bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    take = np.arange(total, dtype=np.int64) + np.repeat(spans - bounds[:-1], sizes)
    return sizes, *(a[take] for a in pool)


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
            bid10, bid50 = self.bids.depths_within(mid * (1 - 0.001), mid * (1 - 0.005))
            ask10, ask50 = self.asks.depths_within(mid * (1 + 0.001), mid * (1 + 0.005))
            depth = [bid10, ask10, bid50, ask50]
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
        # every row's levels (prices and quantities, as floats and as sent), in feed order, then on one
        # grid per side: the diffs the columnar parse took from its flat arrays, the others from the
        # parser's tuples (or, without them, from the rows' JSON text)
        flat = getattr(parsed, "flat", None)
        rows = getattr(parsed, "rows", parsed)
        extra: dict[str, list] = {"bids": [], "asks": []}
        spans = {"bids": np.zeros(len(feed), dtype=np.int64), "asks": np.zeros(len(feed), dtype=np.int64)}
        sizes = {"bids": np.zeros(len(feed), dtype=np.int64), "asks": np.zeros(len(feed), dtype=np.int64)}
        used = {"bids": 0, "asks": 0}
        for k, (row, kind, i) in enumerate(feed):
            at = flat.index.get(row) if flat is not None and kind == 1 else None
            if at is not None:
                for side, fs in (("bids", flat.bids), ("asks", flat.asks)):
                    spans[side][k], sizes[side][k] = fs.offsets[at], fs.offsets[at + 1] - fs.offsets[at]
                continue
            lv = rows.get(row)
            if lv is None:
                frame = sn if kind == 0 else du
                bids, asks = orjson.loads(frame["bids"].iat[i]), orjson.loads(frame["asks"].iat[i])
                lv = (bids, asks, level_floats(bids), level_floats(asks))
            for side, sent, (p, q) in (("bids", lv[0], lv[2]), ("asks", lv[1], lv[3])):
                extra[side].append((sent, p, q))
                spans[side][k], sizes[side][k] = -1 - used[side], len(p)  # negative: from the extra pool
                used[side] += len(p)
        grids, vocabs = {}, {}
        for side, sign in (("bids", -1), ("asks", 1)):
            fs = getattr(flat, side) if flat is not None else None
            base = len(fs.prices) if fs is not None else 0
            sent = list(chain.from_iterable(s for s, _, _ in extra[side]))
            # the texts as codes into one vocabulary per side and kind (the flat levels' own, extended
            # with the texts only the other rows send)
            vocab = np.concatenate([fs.price_vocab, fs.qty_vocab]) if fs is not None else None
            vocab, price_code = _encode(vocab, map(itemgetter(0), sent), len(sent))
            vocab, qty_code = _encode(vocab, map(itemgetter(1), sent), len(sent))
            vocabs[side] = vocab
            # one vocabulary per side: the flat qty codes come after the flat price texts
            pools = [] if fs is None else [(fs.prices, fs.qtys, fs.price_code.astype(np.int64),
                                            fs.qty_code.astype(np.int64) + len(fs.price_vocab))]
            pools.append((np.fromiter(chain.from_iterable(p for _, p, _ in extra[side]), np.float64, len(sent)),
                          np.fromiter(chain.from_iterable(q for _, _, q in extra[side]), np.float64, len(sent)),
                          price_code, qty_code))
            start = spans[side]
            start = np.where(start < 0, base + (-1 - start), start)
            grids[side] = grid_levels_flat(*_gather(pools, start, sizes[side]), sign)
        (bid_keys, bid_rows), (ask_keys, ask_rows) = grids["bids"], grids["asks"]
        book.bids, book.asks = _GridSide(-1, bid_keys, vocabs["bids"]), _GridSide(1, ask_keys, vocabs["asks"])
        snaps = list(zip(sn["ts"], sn["last_update_id"], strict=True))
        diffs = list(zip(du["ts"], du["first_update_id"], du["final_update_id"], du["prev_final_update_id"],
                         strict=True))
        for k, (_row, kind, i) in enumerate(feed):
            if kind == 0:
                ts, last = snaps[i]
                book.snapshot(ts, int(last), None, None, bid_rows[k], ask_rows[k])
            else:
                ts, first, final, prev = diffs[i]
                prev = None if prev is pd.NA or prev is None or prev != prev else int(prev)
                book.diff(Diff(ts, int(first), int(final), prev, None, None, bid_rows[k], ask_rows[k]))
        book.finish()
        s, e = book.take()
        states.append(s)
        events.append(e)
    if not states:
        return BookBuilder("", "", levels or DEFAULT_LEVELS).take()
    return pd.concat(states, ignore_index=True), pd.concat(events, ignore_index=True)
