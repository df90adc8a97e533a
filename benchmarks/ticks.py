"""`make bench` section `ticks`: events/s of `mwh load ticks` on the real Binance capture (94k messages,
data/sample/microstructure/), into TimescaleDB and DuckDB, beside a bare COPY of the same rows into the
same (empty) hypertables: what the loader's guarantees (validation, one transaction, merge, audit) cost.

Figures: parse (text -> typed frames; again with MWH_TICK_PARSE_PROCESSES=2), book fold (the whole file's book states, loaders/book.py),
write (the raw tick tables through `write_ticks`: the merge path, quarantine and audit), COPY (the
same rows, one COPY per table, one transaction: as CSV (Arrow-encoded blocks through psycopg's
`copy.write`) and as binary (the loader's encoding, sinks/ticks_pg.py) into tables with no key, and
binary into tables with the raw tables' primary key), and end to end (parse + book rebuild + bars from trades + write, as `mwh load
ticks` runs: the book and bars on a second thread while the raw tables are written) into empty
tables and again (a reload: every row a duplicate).

Each line gives wall seconds and this process's CPU seconds with its children's (the parse's second
process; the database server's work is not in them), and the load average before the section: the machine is shared, so a wall figure is
only comparable with the others of the same run. The TimescaleDB lines also give the CPU seconds of the
server's backend serving the load (`server`, read from /proc when the server runs on this machine):
100k events/s is 0.94 s a file, so the loader and its backend each get at most 0.94 CPU-s of a core.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from market_warehouse.loaders.book import rebuild
from market_warehouse.loaders.sinks import DuckDBSink, PostgresSink
from market_warehouse.loaders.sinks.postgres_sink import copy_parts
from market_warehouse.loaders.sinks.ticks_pg import copy_binary
from market_warehouse.loaders.sources.binance_ws import TICK_FORMATS
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, TABLES, gc_paused, load_tick_files, write_ticks
from market_warehouse.runs import new_run_id, utcnow, with_audit

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "data" / "sample" / "microstructure" / "usdm_btcusdt_20240808.gz"
GOAL = 100_000  # events/s into TimescaleDB (issue 12)


def _pg_sink(server, timescale: bool) -> PostgresSink:
    db = server.fresh_db(timescale=timescale)
    sink = PostgresSink(server.conninfo(db), create_extension=timescale)
    sink.ensure_tables(ALL_TICK_TABLES)
    return sink


# The bare COPYs: (label, format, with the raw tables' primary key)
COPIES = (("csv", "csv", False), ("binary", "binary", False), ("binary+key", "binary", True))


def _copy_tables(sink: PostgresSink, batch, suffix: str, key: bool) -> dict:
    """The parsed rows (audit columns set, the source named as the loader names it) and empty tables
    shaped like the raw ones for them (with their primary key if `key`)."""
    frames = {n: with_audit(f.drop(columns="_row"), str(CAPTURE), new_run_id(), utcnow())[t.column_names]
              for n, t in TABLES.items() if len(f := batch.frames[n])}
    with sink.conn.transaction():
        for name in frames:
            sink.conn.execute(f"create table raw.copy_{name}_{suffix} (like raw.{name}"
                              f"{' including indexes' if key else ''})")
            if sink.timescale:
                sink.conn.execute(f"select create_hypertable('raw.copy_{name}_{suffix}', "
                                  "by_range('ts', interval '1 day'))")
    return frames


def _copy(sink: PostgresSink, frames: dict, suffix: str, fmt: str) -> None:
    """COPY the rows into the tables of `_copy_tables`, one COPY per table, one transaction: CSV
    (Arrow-encoded blocks) or binary (sinks/ticks_pg.py, the loader's own encoding)."""
    with sink.conn.transaction(), sink.conn.cursor() as cur:
        for name, frame in frames.items():
            if fmt == "csv":
                copy_parts(cur, f"raw.copy_{name}_{suffix}", TABLES[name].column_names, [(frame, None)])
            else:
                copy_binary(cur, f"raw.copy_{name}_{suffix}", TABLES[name], frame)


def _cpu() -> float:
    """This process's CPU seconds plus those of its ended children (the parse's second process)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def _env(name: str, value: str):
    was = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if was is None:
            del os.environ[name]
        else:
            os.environ[name] = was


def _backend_cpu(sink) -> float | None:
    """CPU seconds so far of the PostgreSQL backend serving `sink`'s connection, from /proc: None when
    it is not a process of this machine (a remote server, another PID namespace)."""
    if sink is None:
        return None
    pid = sink.conn.execute("select pg_backend_pid()").fetchone()[0]
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, _, rest = stat.partition(" (")[2].rpartition(") ")
    if not name.startswith("postgres"):
        return None
    fields = rest.split()  # from the state (field 3): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Timer:
    """Wall and this process's CPU seconds; with a PostgreSQL `sink`, its backend's CPU seconds too."""

    def __init__(self, sink=None):
        self.sink, self.server = sink, None

    def __enter__(self):
        self.server = _backend_cpu(self.sink)
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu
        if self.server is not None:
            after = _backend_cpu(self.sink)
            self.server = after - self.server if after is not None else None


def _line(what: str, t: _Timer, events: int, extra: str = "") -> str:
    server = f", server {t.server:5.2f}s" if t.server is not None else ""
    return (f"  {what:<30} {t.wall:6.2f}s {events / t.wall:>9,.0f} events/s  (cpu {t.cpu:5.2f}s "
            f"{events / max(t.cpu, 1e-9):>9,.0f}/s{server}){extra}")


def run(server) -> list[str]:
    load = os.getloadavg()[0]
    with _Timer() as t, gc_paused():  # as the loader runs it
        batch = TICK_FORMATS["binance-ws"](CAPTURE)
    events = sum(batch.events.values())
    lines = [f"ticks: {CAPTURE.name}, {events:,} messages ({', '.join(f'{k} {v:,}' for k, v in sorted(batch.events.items()))}); "
             f"goal {GOAL:,} events/s into TimescaleDB; load average {load:.1f}",
             _line("parse", t, events)]
    with _Timer() as t, gc_paused(), _env("MWH_TICK_PARSE_PROCESSES", "2"):
        TICK_FORMATS["binance-ws"](CAPTURE)
    lines.append(_line("parse, 2 processes", t, events, "  (MWH_TICK_PARSE_PROCESSES=2)"))
    with _Timer() as t, gc_paused():
        rebuild(batch.frames["depth_updates"], batch.frames["depth_snapshots"], parsed=batch.levels)
    lines.append(_line("book fold", t, events, f"  ({batch.events['depth_updates']:,} diffs)"))
    targets = [("duckdb", None)] + ([("timescale", True)] if server is not None else [])
    tmp = Path(tempfile.mkdtemp(prefix="mwh_bench_ticks_"))  # the DuckDB files, removed at the end
    try:
        lines += _run_targets(server, batch, events, targets, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if server is not None:
            server.drop_all()
    return lines


def _run_targets(server, batch, events: int, targets: list, tmp: Path) -> list[str]:
    lines = []
    for name, timescale in targets:
        sink = _duckdb_sink(tmp / "load.duckdb") if name == "duckdb" else _pg_sink(server, timescale)
        try:
            lines.append(f"  {name}: load average {os.getloadavg()[0]:.1f}")
            pg = sink if name != "duckdb" else None
            with _Timer(pg) as t:
                [report] = load_tick_files(sink, [CAPTURE], "binance-ws")  # empty tables
            lines.append(_line(f"{name} end to end, first load", t, events,
                               f"  {report.loaded:,} new, book + bars included"))
            if name != "duckdb":
                for label, fmt, key in COPIES:
                    frames = _copy_tables(sink, batch, label.replace("+", "_"), key)
                    with _Timer(pg) as t:
                        _copy(sink, frames, label.replace("+", "_"), fmt)
                    lines.append(_line(f"{name} COPY same rows, {label}", t, events))
            with _Timer(pg) as t:
                [report] = load_tick_files(sink, [CAPTURE], "binance-ws")  # a reload: every row a duplicate
            lines.append(_line(f"{name} end to end, reload", t, events, f"  {report.duplicate:,} duplicates"))
        finally:
            sink.close()
        # the raw tick tables only, into empty ones (no book, no bars): the loader's write path
        fresh = _pg_sink(server, timescale) if name != "duckdb" else _duckdb_sink(tmp / "write.duckdb")
        try:
            with _Timer(fresh if name != "duckdb" else None) as t:
                _write_raw(fresh, batch)
            lines.append(_line(f"{name} write (merge) raw only", t, events))
        finally:
            fresh.close()
    return lines


def _duckdb_sink(path: Path) -> DuckDBSink:
    sink = DuckDBSink(str(path))
    sink.ensure_tables(ALL_TICK_TABLES)
    return sink


def _write_raw(sink, batch) -> None:
    """The raw tick tables only (no book, no bars): what the loader's write path costs."""
    from market_warehouse.loaders.book import BookBuilder

    states, events = BookBuilder("", "").take()
    write_ticks(sink, batch, states.iloc[:0], events.iloc[:0], None, new_run_id(), utcnow())

