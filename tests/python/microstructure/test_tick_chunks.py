"""`mwh load ticks` of a capture in chunks (loaders/ticks.py `_load_chunked`: a thread parses chunk
k + 1 while chunk k is written, all in the file's one transaction) lands what the whole-file path
lands, on DuckDB and TimescaleDB:

- bad lines on both sides of a chunk boundary, a bad depth diff in the last chunk: the same rows in
  every table, the same quarantine (line numbers, reasons), the same counts; a reload adds nothing;
- a file whose last chunk fails leaves no row of the chunks written before it, and its error is one
  line naming the file;
- a key in two chunks (a repeated trade, a clashing one): the whole-file dedupe decides it, as before.
"""

from __future__ import annotations

import json

import pytest

from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sources import binance_ws
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, TICK_TABLES, load_tick_files
from tests.python.microstructure import capture

CHUNK = 1_000
N_LINES = 5_500  # 6 chunks of 1,000 lines (the last one shorter)
TABLES = ("trades", "depth_updates", "book_tickers", "depth_snapshots", "book_states", "book_sequence_events",
          "bars")
AUDIT = {"source", "run_id", "loaded_at", "quarantined_at"}


@pytest.fixture(params=["duckdb", "timescale"])
def target(request):
    return request.getfixturevalue(f"{request.param}_target")


def _trade(n: int, price: str = "61800.2", ts: int = 1723161300001) -> str:
    return (f'17231613{n:08d}000 {{"stream":"btcusdt@trade","data":{{"e":"trade","E":1723161300001,'
            f'"T":{ts},"s":"BTCUSDT","t":{n},"p":"{price}","q":"0.1","m":true}}}}')


def _rows() -> list[str]:
    rows = capture.lines(N_LINES)
    diffs = [i for i, r in enumerate(rows) if '"depthUpdate"' in r]
    broken = json.loads(rows[diffs[-3]].split(" ", 1)[1])  # a bad level in the last chunk
    broken["data"]["b"] = [["61800.1"]]
    rows[diffs[-3]] = rows[diffs[-3]].split(" ", 1)[0] + " " + json.dumps(broken)
    # lines CHUNK (the first chunk's last) and CHUNK + 1 (the second's first) are bad; a blank line at
    # the end of the third chunk
    rows[CHUNK - 1] = _trade(1, price="-5")
    rows[CHUNK] = '1723161300000000001 {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}'
    rows[3 * CHUNK - 1] = ""
    return rows


def _stored(sink) -> dict[str, list]:
    out = {}
    for table in (*TABLES, "quarantine"):
        cols = [c for c in next(t for t in ALL_TICK_TABLES if t.name == table).column_names if c not in AUDIT]
        out[table] = sorted(map(repr, sink.query(f"select {', '.join(cols)} from raw.{table}")))
    return out


def _clear(sink) -> None:
    with sink.transaction() as tx:
        for table in (*TABLES, "quarantine", "loader_runs"):
            tx.execute(f"delete from raw.{table}")


def _summary(report) -> tuple:
    return (report.status, report.rows_read, report.loaded, report.replaced, report.duplicate, report.quarantined,
            report.notes)


def _load(path, lines: int, monkeypatch):
    monkeypatch.setenv("MWH_TICK_CHUNK_LINES", str(lines))
    with open_sink(tables=ALL_TICK_TABLES) as sink:
        return load_tick_files(sink, [path], "binance-ws")


def test_chunks_land_what_the_whole_file_lands(target, tmp_path, monkeypatch):
    path = capture.write(tmp_path / "capture.txt", _rows())
    assert len(list(binance_ws.parse_chunks(path, CHUNK))) == 6  # the file is loaded in 6 chunks

    [whole] = _load(path, 0, monkeypatch)
    with open_sink(tables=ALL_TICK_TABLES) as sink:
        expected = _stored(sink)
        _clear(sink)
    assert whole.status == "success" and whole.quarantined == 3, whole  # the blank line is skipped
    assert len(expected["trades"]) > 500 and len(expected["book_states"]) > 100

    [chunked] = _load(path, CHUNK, monkeypatch)
    assert _summary(chunked) == _summary(whole)
    with open_sink(tables=ALL_TICK_TABLES) as sink:
        assert _stored(sink) == expected
        q = sink.query("select row_number, target_table, reason from raw.quarantine order by row_number")
        assert [r[0] for r in q][:2] == [CHUNK, CHUNK + 1], q
        assert "price `p` '-5'" in q[0][2] and "unknown event type 'aggTrade'" in q[1][2]

    [again] = _load(path, CHUNK, monkeypatch)  # a reload in chunks: every row a duplicate
    assert again.loaded == 0 and again.duplicate == whole.loaded, again


def test_failed_last_chunk_leaves_no_rows(target, tmp_path, monkeypatch):
    rows = capture.lines(3 * CHUNK) + [_trade(77, ts=9_000_000_000_000_000)]  # a time pandas cannot hold
    path = capture.write(tmp_path / "capture.txt", rows)
    [report] = _load(path, CHUNK, monkeypatch)
    assert report.status == "failed", report
    assert str(path) in report.error and "\n" not in report.error, report.error
    with open_sink(tables=ALL_TICK_TABLES) as sink:
        for table in (*TABLES, "quarantine"):
            assert sink.query(f"select count(*) from raw.{table}")[0][0] == 0, table
        assert sink.query("select status from raw.loader_runs") == [("failed",)]


def test_key_in_two_chunks_is_decided_by_the_whole_file(duckdb_target, tmp_path, monkeypatch):
    rows = capture.lines(3 * CHUNK)
    rows[10] = _trade(5, price="61800.1")
    rows[CHUNK + 10] = _trade(5, price="61800.1")  # the same trade again: one duplicate
    rows[20] = _trade(6, price="61800.1")
    rows[2 * CHUNK + 10] = _trade(6, price="61800.9")  # trade 6 again, another price: both rejected
    path = capture.write(tmp_path / "capture.txt", rows)
    [whole] = _load(path, 0, monkeypatch)
    with open_sink(tables=ALL_TICK_TABLES) as sink:
        expected = _stored(sink)
        _clear(sink)
    assert whole.duplicate == 1 and whole.quarantined == 2, whole
    [chunked] = _load(path, CHUNK, monkeypatch)
    assert _summary(chunked) == _summary(whole)
    with open_sink(tables=ALL_TICK_TABLES) as sink:
        assert _stored(sink) == expected


def test_chunk_lines_setting(monkeypatch):
    monkeypatch.setenv("MWH_TICK_CHUNK_LINES", "many")
    with pytest.raises(ValueError, match="MWH_TICK_CHUNK_LINES"):
        binance_ws.chunk_lines()
    assert TICK_TABLES  # the tick tables exist for the loads above
