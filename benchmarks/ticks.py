"""`make bench` section `ticks`: events/s of `mwh load ticks` on the real Binance capture (94k messages,
data/sample/microstructure/), into TimescaleDB and DuckDB, beside a bare COPY of the same rows into the
same (empty) hypertables: what the loader's guarantees (validation, one transaction, merge, audit) cost.

Figures: parse (text -> typed frames), write (the raw tick tables through `write_ticks`: the merge
path, quarantine and audit), COPY (the same rows, no key check), and end to end (parse + book rebuild +
bars from trades + write, as `mwh load ticks` runs).
"""

from __future__ import annotations

import time
from pathlib import Path

from market_warehouse.loaders.sinks import DuckDBSink, PostgresSink
from market_warehouse.loaders.sinks.postgres_sink import copy_parts
from market_warehouse.loaders.sources.binance_ws import TICK_FORMATS
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, TABLES, load_tick_files, write_ticks
from market_warehouse.runs import new_run_id, utcnow, with_audit

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "data" / "sample" / "microstructure" / "usdm_btcusdt_20240808.gz"
GOAL = 100_000  # events/s into TimescaleDB (issue 12)


def _pg_sink(server, timescale: bool) -> PostgresSink:
    db = server.fresh_db(timescale=timescale)
    sink = PostgresSink(server.conninfo(db), create_extension=timescale)
    sink.ensure_tables(ALL_TICK_TABLES)
    return sink


def _copy_rate(sink: PostgresSink, batch) -> float:
    """COPY the parsed rows (audit columns set) into empty tables shaped like the raw ones."""
    frames = {n: with_audit(f.drop(columns="_row"), "bench", "bench", utcnow())[t.column_names]
              for n, t in TABLES.items() if len(f := batch.frames[n])}
    with sink.conn.transaction():
        for name in frames:
            sink.conn.execute(f"create table raw.copy_{name} (like raw.{name})")
            if sink.timescale:
                sink.conn.execute(f"select create_hypertable('raw.copy_{name}', by_range('ts', interval '1 day'))")
    t0 = time.perf_counter()
    with sink.conn.transaction(), sink.conn.cursor() as cur:
        for name, frame in frames.items():
            copy_parts(cur, f"raw.copy_{name}", TABLES[name].column_names, [(frame, None)])
    return time.perf_counter() - t0


def run(server) -> list[str]:
    t0 = time.perf_counter()
    batch = TICK_FORMATS["binance-ws"](CAPTURE)
    parse_s = time.perf_counter() - t0
    events = sum(batch.events.values())
    lines = [f"ticks: {CAPTURE.name}, {events:,} messages ({', '.join(f'{k} {v:,}' for k, v in sorted(batch.events.items()))}); "
             f"goal {GOAL:,} events/s into TimescaleDB",
             f"  parse                       {parse_s:6.2f}s  {events / parse_s:>10,.0f} events/s"]
    targets = [("duckdb", None)] + ([("timescale", True)] if server is not None else [])
    for name, timescale in targets:
        if name == "duckdb":
            import tempfile
            tmp = tempfile.mkdtemp(prefix="mwh_bench_ticks_")
            sink = DuckDBSink(str(Path(tmp) / "w.duckdb"))
            sink.ensure_tables(ALL_TICK_TABLES)
        else:
            sink = _pg_sink(server, timescale)
        try:
            t0 = time.perf_counter()
            _write_raw(sink, batch)
            write_s = time.perf_counter() - t0
            lines.append(f"  {name:<10} write (merge)     {write_s:6.2f}s  {events / write_s:>10,.0f} events/s")
            if name != "duckdb":
                copy_s = _copy_rate(sink, batch)
                lines.append(f"  {name:<10} COPY same rows    {copy_s:6.2f}s  {events / copy_s:>10,.0f} events/s")
            t0 = time.perf_counter()
            [report] = load_tick_files(sink, [CAPTURE], "binance-ws")  # a reload: every row a duplicate
            again_s = time.perf_counter() - t0
            lines.append(f"  {name:<10} end to end, reload {again_s:5.2f}s  {events / again_s:>10,.0f} events/s "
                         f"({report.duplicate:,} duplicates, book + bars included)")
        finally:
            sink.close()
    if server is not None:
        server.drop_all()
    return lines


def _write_raw(sink, batch) -> None:
    """The raw tick tables only (no book, no bars): what the loader's write path costs."""
    from market_warehouse.loaders.book import BookBuilder

    states, events = BookBuilder("", "").take()
    write_ticks(sink, batch, states.iloc[:0], events.iloc[:0], None, new_run_id(), utcnow())

