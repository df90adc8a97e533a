"""`mwh stream binance` against a local websocket server on 127.0.0.1 that replays the real capture
(bounded: a fixed number of messages), drops the connection once and leaves out one depth diff (a
sequence gap). The REST snapshot URL is a setting, served here by a local HTTP server that answers
with the book as it stands at the replay's position. What the stream stored must equal what
`mwh load ticks` stores from the same capture: trades, book tickers, bars; the diffs minus the one
left out; the rebuilt book wherever the stream's book was valid."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import websockets

from market_warehouse.config import Target
from market_warehouse.loaders import book as bookmod
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, load_tick_files
from market_warehouse.stream.binance import StreamConfig, run_stream
from tests.python.microstructure import capture

# The first 20,000 lines of the capture (~75 s of market time: complete 1s bars, and the 1m bar of
# 23:55 is not complete, so none); kept short for a shared CI machine.
STREAM_LINES = 20_000
DISCONNECT_AFTER = 6_000  # messages sent on the first connection
SKIP_DIFF = 600  # the n-th depth diff is never sent


class Replay:
    """The capture as a websocket server (messages) and a REST depth endpoint (snapshots)."""

    def __init__(self, lines: list[str], gap: bool = True, disconnect: bool = True):
        self.items = [json.loads(x.split(" ", 1)[1]) for x in lines]
        self.texts = [x.split(" ", 1)[1] for x in lines]
        self.is_snapshot = ["lastUpdateId" in m for m in self.items]
        diffs = [i for i, m in enumerate(self.items) if m.get("data", {}).get("e") == "depthUpdate"]
        self.skip = diffs[SKIP_DIFF] if gap else -1
        self.sent_upto = 0  # index into items: everything before it was sent (or skipped)
        self.connections = 0 if disconnect else 1
        self.sent = 0
        self.to_send = sum(1 for i, s in enumerate(self.is_snapshot) if not s and i != self.skip)
        self.snapshots_served = []
        # The client sees the gap at the next diff, when its writer takes that batch; sending waits there
        # for the resync snapshot. Without the wait the stream can reach its message limit first: the
        # writer's 0.5 s batch takes whatever the reader has read meanwhile (8,000-11,500 messages on a
        # busy machine), so the gap was seen with 150-4,000 messages left, and the resync snapshot was
        # still pending when the stream stopped (2 snapshots, not 3) in 5 runs of 12.
        self.hold_after = diffs[SKIP_DIFF + 1] if gap else -1  # after this item, wait for a snapshot
        self.waits_timed_out: list[int] = []  # sent_upto of every wait for a snapshot that gave up

    async def _await_snapshot(self, served: int) -> None:
        for _ in range(6000):  # up to 60 s: the client's writer may be slow on a loaded machine
            if len(self.snapshots_served) > served:
                return
            await asyncio.sleep(0.01)
        self.waits_timed_out.append(self.sent_upto)

    async def handler(self, ws):
        self.connections += 1
        first = self.connections == 1
        # Like the exchange's, our snapshot is the book at the server's position. Sending starts once
        # the client has asked for its snapshot, so that the snapshot is at the (re)connect point and
        # the gap further on is one the client must detect.
        await self._await_snapshot(len(self.snapshots_served))
        i = self.sent_upto
        while i < len(self.items):
            if not self.is_snapshot[i] and i != self.skip:
                await ws.send(self.texts[i])
                self.sent += 1
            i += 1
            self.sent_upto = i  # before any wait: the snapshot served meanwhile is the book after item i - 1
            if i - 1 == self.hold_after:  # the client asks for a snapshot once it has seen the gap
                await self._await_snapshot(len(self.snapshots_served))
            if first and self.sent == DISCONNECT_AFTER:
                await ws.close()  # the deliberate disconnect
                return
        await ws.wait_closed()

    def snapshot(self) -> dict:
        """The exchange's book at the replay position: the capture's snapshot + every BTCUSDT diff up to
        it (the left-out one included: the exchange's book has it). A replay that adds other symbols'
        copies of the diffs (test_stream_two_symbols.py) serves this same book for each of them."""
        upto = self.sent_upto
        b = bookmod.BookBuilder("BTCUSDT", "BINANCE", levels=1)
        last_e = None
        for i in range(upto):
            m = self.items[i]
            if self.is_snapshot[i]:
                b.snapshot(None, m["lastUpdateId"], m["bids"], m["asks"])
            elif m["data"]["e"] == "depthUpdate" and m["data"]["s"] == "BTCUSDT":
                d = m["data"]
                b.diff(bookmod.Diff(d["E"], d["U"], d["u"], d["pu"], d["b"], d["a"]))
                last_e = d["E"]
        if b.status != "valid":  # not synced yet at this position: the capture's own snapshot
            snap = self.items[self.is_snapshot.index(True)]
        else:
            snap = {**b.full_book(), "E": last_e, "T": last_e}
        self.snapshots_served.append(snap["lastUpdateId"])
        return snap


def _serve(replay: Replay):
    ready = threading.Event()
    box = {}

    def ws_thread():
        async def main():
            async with websockets.serve(replay.handler, "127.0.0.1", 0, ping_interval=None) as server:
                box["ws_port"] = server.sockets[0].getsockname()[1]
                box["loop"] = asyncio.get_running_loop()
                box["stop"] = asyncio.Event()
                ready.set()
                await box["stop"].wait()
        asyncio.run(main())

    class Depth(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(replay.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Depth)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    t = threading.Thread(target=ws_thread, daemon=True)
    t.start()
    ready.wait(10)
    return box, http


def _stream(replay: Replay, target: Target, monkeypatch, symbols: list[str]):
    """`mwh stream binance` for `symbols` against the replay (websocket and REST snapshot URLs as
    settings) until it has sent everything; the servers are stopped after. Returns the stream's stats."""
    box, http = _serve(replay)
    try:
        monkeypatch.setenv("MWH_BINANCE_WS_URL", f"ws://127.0.0.1:{box['ws_port']}/stream")
        monkeypatch.setenv("MWH_BINANCE_SNAPSHOT_URL",
                           f"http://127.0.0.1:{http.server_address[1]}/fapi/v1/depth?symbol={{symbol}}")
        config = StreamConfig.from_env(symbols, ["trade", "depth", "bookTicker"], batch_seconds=0.5,
                                       buffer=2_000, max_messages=replay.to_send, max_seconds=300)
        with open_sink(target, tables=ALL_TICK_TABLES) as sink:
            return run_stream(sink, config)
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        http.shutdown()


def _file_load(lines: list[str], tmp_path) -> Target:
    """The same capture loaded from a file (`mwh load ticks`), into a DuckDB file of its own."""
    path = capture.write(tmp_path / "capture.txt", lines)
    file_target = Target(name="duckdb", type="duckdb", path=str(tmp_path / "file.duckdb"))
    with open_sink(file_target, tables=ALL_TICK_TABLES) as fsink:
        [report] = load_tick_files(fsink, [path], "binance-ws")
        assert report.status == "success"
    return file_target


def _frame(sink, table: str, columns: str, order: str) -> pd.DataFrame:
    rows = sink.query(f"select {columns} from raw.{table} order by {order}")
    frame = pd.DataFrame(rows, columns=[c.strip() for c in columns.split(",")])
    for c in frame.columns:
        if c == "ts" or c.endswith("_ts"):
            frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


@pytest.fixture(params=["duckdb", "timescale"])
def target(request):
    return request.getfixturevalue(f"{request.param}_target")


def test_replayed_stream_equals_file_load(target: Target, tmp_path, monkeypatch):
    lines = capture.lines(STREAM_LINES)
    replay = Replay(lines)
    stats = _stream(replay, target, monkeypatch, ["BTCUSDT"])
    assert stats.messages == replay.to_send
    assert stats.connects == 2 and replay.connections == 2
    assert stats.gaps == 1
    assert stats.max_queue <= 2_000  # bounded: the reader waited instead of growing the buffer
    assert replay.waits_timed_out == [], "the replay stopped waiting for a snapshot the client never asked for"
    # at start, after the reconnect, after the gap: each asked for once, each served once
    assert stats.snapshots == 3 and len(replay.snapshots_served) == 3, replay.snapshots_served

    file_target = _file_load(lines, tmp_path)

    with open_sink(target, tables=ALL_TICK_TABLES) as sink, open_sink(file_target, tables=ALL_TICK_TABLES) as fsink:
        specs = {
            "trades": ("ts, symbol, exchange, trade_id, price, quantity, is_buyer_maker, event_ts", "trade_id"),
            "book_tickers": ("ts, symbol, exchange, update_id, bid_price, bid_qty, ask_price, ask_qty, "
                             "transaction_ts", "update_id, ts"),
            "bars": ("ts, symbol, exchange, interval, open, high, low, close, volume, vwap, trade_count, "
                     "quote_volume, taker_buy_volume, taker_buy_quote_volume", "interval, ts"),
        }
        for table, (cols, order) in specs.items():
            got, want = _frame(sink, table, cols, order), _frame(fsink, table, cols, order)
            assert len(want) > 0
            if table == "bars":
                keys = lambda f: set(zip(f["interval"], f["ts"], strict=True))  # noqa: E731
                assert keys(got) == keys(want), (sorted(keys(got) - keys(want)), sorted(keys(want) - keys(got)))
            pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=table)

        cols = "ts, first_update_id, final_update_id, prev_final_update_id, bids, asks"
        got, want = (_frame(s, "depth_updates", cols, "final_update_id") for s in (sink, fsink))
        skipped = replay.items[replay.skip]["data"]["u"]
        pd.testing.assert_frame_equal(got, want[want["final_update_id"] != skipped].reset_index(drop=True),
                                      check_dtype=False)

        cols = ("ts, update_id, best_bid, best_bid_qty, best_ask, best_ask_qty, bid_levels, ask_levels, "
                "bid_depth_10bps, ask_depth_10bps, bid_depth_50bps, ask_depth_50bps")
        got, want = (_frame(s, "book_states", cols, "update_id") for s in (sink, fsink))
        merged = got.merge(want, on="update_id", suffixes=("", "_file"), how="left", indicator=True)
        assert (merged["_merge"] == "both").all(), "the stream has book states the file load has not"
        for c in got.columns:
            if c != "update_id":
                pd.testing.assert_series_equal(merged[c], merged[f"{c}_file"], check_names=False, obj=c)
        events = sink.query("select event, expected_prev_update_id, prev_update_id from raw.book_sequence_events "
                            "where event <> 'synced' order by ts, update_id")
        details = sink.query("select ts, event, update_id, detail from raw.book_sequence_events order by ts")
        synced = [u for (u,) in sink.query("select update_id from raw.book_sequence_events "
                                           "where event = 'synced' order by update_id")]
    # The gap is the left-out diff: the next diff's pu is its u. It is the one break: no `no_straddle`
    # (the resync snapshot is the book after the next diff, which straddles it).
    assert events == [("gap", replay.items[replay.skip]["data"]["pu"], skipped)], (details, replay.snapshots_served)
    # every snapshot served synced the book once, in order: start, reconnect, gap
    assert synced == replay.snapshots_served, (details, replay.snapshots_served)
    # States missing from the stream: exactly those from the gap to the resync snapshot (the book is
    # invalid there and never continued through the gap); all others equal the file load's.
    missing = set(want["update_id"]) - set(got["update_id"])
    resync = max(synced)
    assert resync == replay.items[replay.hold_after]["data"]["u"] > skipped  # resynced at the next diff
    assert missing == {u for u in want["update_id"] if skipped <= u < resync}
    assert got["update_id"].max() == want["update_id"].max()
    print(f"stream: {len(got)} of {len(want)} book states, all equal to the file load's; {len(missing)} missing "
          f"from the gap (u={skipped}) to the resync (u={resync}); snapshots served {replay.snapshots_served}; "
          f"buffer peak {stats.max_queue}")


def test_ctrl_c_writes_what_is_buffered(duckdb_target, monkeypatch):
    """`mwh stream binance` as a process: SIGINT after the server has sent ~3,000 messages (and then
    sends nothing more): exit 0, and every one of those messages is stored (nothing lost in the buffer)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    lines = capture.lines(3_000)
    replay = Replay(lines, gap=False, disconnect=False)
    box, http = _serve(replay)
    try:
        env = {**os.environ, "MWH_BINANCE_WS_URL": f"ws://127.0.0.1:{box['ws_port']}/stream",
               "MWH_BINANCE_SNAPSHOT_URL": f"http://127.0.0.1:{http.server_address[1]}/depth?symbol={{symbol}}"}
        proc = subprocess.Popen([sys.executable, "-m", "market_warehouse.cli", "stream", "binance",
                                 "--symbols", "BTCUSDT", "--batch-seconds", "5"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while replay.sent < replay.to_send and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert replay.sent == replay.to_send, proc.stderr.read() if proc.poll() is not None else replay.sent
        time.sleep(2)  # the client has read them; most still wait in the 5 s micro-batch
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        http.shutdown()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert f"stopped: {replay.to_send:,} messages" in out, out
    expected = capture.counts(lines)
    with open_sink(duckdb_target, tables=ALL_TICK_TABLES) as sink:
        stored = {t: sink.query(f"select count(*) from raw.{t}")[0][0]
                  for t in ("trades", "depth_updates", "book_tickers")}
    assert stored == {"trades": expected["trade"], "depth_updates": expected["depthUpdate"],
                      "book_tickers": expected["bookTicker"]}
