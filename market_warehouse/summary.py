"""The short report `mwh demo` and `mwh summary` print: what is in the warehouse."""

from __future__ import annotations

from market_warehouse.loaders.sinks import Sink


def load_times_note(reports, wall_seconds: float | None) -> str | None:
    """One line after the per-file lines of a load: their times overlap, so give the wall time.

    A file's time runs from when its parsing starts to when its group commits; the next files are
    parsed while the current one is written and a group commits once, so the per-file times overlap
    and their sum says nothing about the load's duration (the demo's 41 files summed to 137 s in a 9 s
    load)."""
    if wall_seconds is None or len(reports) < 2:
        return None
    summed = sum(r.seconds for r in reports)
    return (f"wall time {wall_seconds:.1f}s for {len(reports)} files (per-file times overlap: files are parsed "
            f"while others are written and each group commits once; they sum to {summed:.1f}s)")


def warehouse_summary(sink: Sink) -> str:
    lines = []
    rows = sink.query(
        "select interval, count(*), count(distinct symbol), min(ts), max(ts) "
        "from raw.bars group by interval order by min(ts)"
    )
    symbols = sink.query("select count(distinct symbol) from raw.bars")[0][0]
    lines.append(f"symbols:            {symbols}")
    for interval, n, syms, lo, hi in rows:
        lines.append(f"bars {interval:<4}         {n:>10,} bars, {syms} symbols, "
                     f"{lo:%Y-%m-%d} .. {hi:%Y-%m-%d}")
    actions = sink.query("select action, count(*) from raw.corporate_actions group by action order by action")
    lines.append("corporate actions:  " + (", ".join(f"{n:,} {a}s" for a, n in actions) or "none"))
    quarantined = sink.query("select count(*) from raw.quarantine")[0][0]
    lines.append(f"rows quarantined:   {quarantined:,}")
    failed = sink.query("select count(*) from raw.loader_runs where status = 'failed'")[0][0]
    lines.append(f"failed sources:     {failed:,} (see raw.loader_runs)")
    return "\n".join(lines)
