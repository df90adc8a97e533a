"""`mwh stream binance` with two symbols on TimescaleDB, through a deliberate disconnect and a sequence
gap on one symbol. The local replay server (test_stream_two_symbols.py's doubling: every message of the
real capture as BTCUSDT, then as an ETHUSDT copy) drops the connection after 6,000 messages and never
sends one ETHUSDT depth diff, after the reconnect. What each symbol stored must equal the file load of
the capture (`mwh load ticks`, into DuckDB):

- trades, book tickers and bars of both symbols: equal;
- depth diffs: BTCUSDT's all, ETHUSDT's all but the left-out one;
- the gap: one `gap` sequence event, ETHUSDT's, naming the left-out diff; ETHUSDT's book emits no state
  from it until a fresh snapshot, and every state after is the file load's again;
- BTCUSDT is unaffected: no event but its two syncs (start, reconnect), and from its reconnect resync on
  every one of its file-load states is stored, all from that one snapshot.
Each book is resynced from a fresh snapshot after the reconnect; every stored state equals the file
load's at the same update id, and the states not stored are exactly those explained above."""

from __future__ import annotations

import time

import pandas as pd

from market_warehouse.config import Target
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.ticks import ALL_TICK_TABLES
from tests.python.microstructure import capture
from tests.python.microstructure.test_stream_replay import (
    DISCONNECT_AFTER,
    Replay,
    _file_load,
    _frame,
    _stream,
)
from tests.python.microstructure.test_stream_two_symbols import TwoSymbolReplay

LINES = 8_000  # the snapshot (line 55), 617 diffs, ~30 s of market time: 15,998 messages doubled
GAP_SYMBOL, OTHER = "ETHUSDT", "BTCUSDT"
GAP_DIFF = 400  # GAP_SYMBOL's n-th depth diff is never sent (after the disconnect: ~ message 10,400)


class TwoSymbolIncidents(TwoSymbolReplay):
    """Every message followed by its ETHUSDT copy, with Replay's disconnect; the gap is GAP_SYMBOL's."""

    def __init__(self, lines: list[str]):
        super().__init__(lines, disconnect=True)
        diffs = [i for i, m in enumerate(self.items)
                 if m.get("data", {}).get("e") == "depthUpdate" and m["data"]["s"] == GAP_SYMBOL]
        self.skip = diffs[GAP_DIFF]
        # The client sees the gap at the symbol's next diff, when its writer takes that batch (every
        # 0.5 s); sending waits there for the resync snapshot, or the stream could reach its message
        # limit first (the full suite once stopped it with the resync still pending: 4 snapshots, not 5).
        self.hold_after = diffs[GAP_DIFF + 1]
        self.to_send = sum(1 for i, s in enumerate(self.is_snapshot) if not s and i != self.skip)
        self.disconnected_at: int | None = None  # index of the first item the second connection sends

    async def handler(self, ws):
        if self.connections == 1 and self.disconnected_at is None:
            self.disconnected_at = self.sent_upto
        await super().handler(ws)


def _first_diff_from(replay: Replay, symbol: str, index: int) -> int:
    """`u` of the symbol's first depth diff at or after item `index`."""
    return next(m["data"]["u"] for m in replay.items[index:]
                if m.get("data", {}).get("e") == "depthUpdate" and m["data"]["s"] == symbol)


def test_two_symbols_disconnect_and_gap_on_one(timescale_target: Target, tmp_path, monkeypatch):
    started = time.monotonic()
    lines = capture.lines(LINES)
    replay = TwoSymbolIncidents(lines)
    assert replay.disconnected_at is None
    stats = _stream(replay, timescale_target, monkeypatch, [OTHER, GAP_SYMBOL])
    streamed = time.monotonic() - started
    assert stats.messages == replay.to_send
    assert stats.connects == 2 and replay.connections == 2
    assert stats.gaps == 1
    assert stats.snapshots >= 5  # two at the start, two after the reconnect, one after the gap
    assert replay.disconnected_at is not None and replay.disconnected_at < replay.skip
    skipped = replay.items[replay.skip]["data"]
    assert skipped["s"] == GAP_SYMBOL
    # the first connection ended after DISCONNECT_AFTER messages, and the left-out diff came after it
    assert sum(1 for i in range(replay.disconnected_at) if not replay.is_snapshot[i]) == DISCONNECT_AFTER

    file_target = _file_load(lines, tmp_path)

    specs = {
        "trades": ("ts, symbol, exchange, trade_id, price, quantity, is_buyer_maker, event_ts", "symbol, trade_id"),
        "book_tickers": ("ts, symbol, exchange, update_id, bid_price, bid_qty, ask_price, ask_qty, transaction_ts",
                         "symbol, update_id, ts"),
        "bars": ("ts, symbol, exchange, interval, open, high, low, close, volume, vwap, trade_count, "
                 "quote_volume, taker_buy_volume, taker_buy_quote_volume", "symbol, interval, ts"),
        "depth_updates": ("ts, symbol, first_update_id, final_update_id, prev_final_update_id, bids, asks",
                          "symbol, final_update_id"),
    }
    state_cols = ("ts, symbol, update_id, synced_update_id, best_bid, best_bid_qty, best_ask, best_ask_qty, "
                  "bid_levels, ask_levels, bid_depth_10bps, ask_depth_10bps, bid_depth_50bps, ask_depth_50bps")
    with open_sink(timescale_target, tables=ALL_TICK_TABLES) as sink, \
            open_sink(file_target, tables=ALL_TICK_TABLES) as fsink:
        for table, (cols, order) in specs.items():
            got, want = _frame(sink, table, cols, order), _frame(fsink, table, cols, order)
            assert len(want) > 0 and set(want["symbol"]) == {"BTCUSDT"}
            assert set(got["symbol"]) == {OTHER, GAP_SYMBOL}, table
            for symbol in (OTHER, GAP_SYMBOL):
                mine = got[got["symbol"] == symbol].drop(columns="symbol").reset_index(drop=True)
                ref = want.drop(columns="symbol")
                if table == "depth_updates" and symbol == GAP_SYMBOL:
                    ref = ref[ref["final_update_id"] != skipped["u"]].reset_index(drop=True)
                    assert len(ref) == len(want) - 1
                pd.testing.assert_frame_equal(mine, ref, check_dtype=False, obj=f"{table} {symbol}")
        states = _frame(sink, "book_states", state_cols, "symbol, update_id")
        file_states = _frame(fsink, "book_states", state_cols, "symbol, update_id").drop(columns="symbol")
        events = sink.query("select symbol, event, update_id, expected_prev_update_id, prev_update_id "
                            "from raw.book_sequence_events order by symbol, update_id")

    # the data-quality record: one gap, GAP_SYMBOL's, at the left-out diff; otherwise only syncs
    breaks = [e for e in events if e[1] != "synced"]
    assert [e for e in breaks if e[1] == "gap"] == [(GAP_SYMBOL, "gap", _first_diff_from(replay, GAP_SYMBOL,
                                                                                          replay.skip + 1),
                                                     skipped["pu"], skipped["u"])], events
    assert {e[:2] for e in breaks} <= {(GAP_SYMBOL, "gap"), (GAP_SYMBOL, "no_straddle")}, events
    synced = {s: sorted(e[2] for e in events if e[0] == s and e[1] == "synced") for s in (OTHER, GAP_SYMBOL)}
    assert len(synced[OTHER]) == 2, synced  # the start and the reconnect: the gap did not touch it
    assert len(synced[GAP_SYMBOL]) >= 3 + len(breaks) - 1, synced

    file_ids = set(file_states["update_id"])
    for symbol in (OTHER, GAP_SYMBOL):
        mine = states[states["symbol"] == symbol].drop(columns="symbol").reset_index(drop=True)
        # every stored state is the file load's at the same update id (the snapshot it came from aside)
        merged = mine.merge(file_states, on="update_id", suffixes=("", "_file"), how="left", indicator=True)
        assert (merged["_merge"] == "both").all(), f"{symbol}: states the file load has not"
        for c in mine.columns:
            if c not in ("update_id", "synced_update_id"):
                pd.testing.assert_series_equal(merged[c], merged[f"{c}_file"], check_names=False,
                                               obj=f"{symbol} {c}")
        ids = set(mine["update_id"])
        assert max(ids) == max(file_ids)
        # the reconnect: from the symbol's first diff on the second connection, no state until a fresh
        # snapshot; from then on a state for every diff
        first_after = _first_diff_from(replay, symbol, replay.disconnected_at)
        resumed = min(u for u in ids if u >= first_after)
        before = mine.loc[mine["update_id"] < first_after, "synced_update_id"]
        after = mine.loc[mine["update_id"] >= resumed, "synced_update_id"]
        assert before.nunique() == 1 and after.iloc[0] > before.iloc[0], (symbol, before.unique(), after.unique())
        explained = {u for u in file_ids if u < min(ids) or first_after <= u < resumed}
        if symbol == GAP_SYMBOL:
            # the gap: no state from the left-out diff until the resync snapshot, then every one again
            resync = max(synced[symbol])
            assert resync > skipped["u"]
            explained |= {u for u in file_ids if skipped["u"] <= u < resync}
            assert after.nunique() == 2 and (mine.loc[mine["update_id"] >= resync, "synced_update_id"] == resync).all()
        else:
            assert after.nunique() == 1  # one snapshot from the reconnect to the end: unaffected by the gap
        missing = file_ids - ids
        assert missing == explained, (symbol, sorted(missing ^ explained)[:10])
        print(f"\n{symbol}: {len(ids)} of {len(file_ids)} book states, all equal to the file load's; missing "
              f"{len(missing)} (start {sum(u < min(ids) for u in missing)}, reconnect "
              f"{sum(first_after <= u < resumed for u in missing)}"
              + (f", gap u={skipped['u']}..resync {resync}" if symbol == GAP_SYMBOL else "") + ")")
    print(f"streamed {stats.messages:,} messages in {streamed:.1f}s, buffer peak {stats.max_queue}, "
          f"snapshots served {replay.snapshots_served}; test {time.monotonic() - started:.1f}s")
