"""Files parsed and validated as one batch (GROUP_FORMATS, MWH_LOAD_GROUP_FILES) land exactly what
one file at a time lands: the same bars, corporate actions, quarantine rows (file, line, reason),
per-file audit rows and reports, on real databases, with the rules that are per file (duplicates
within a file, a file refused for an unaccepted symbol, a wrong header, malformed rows, a file that
shares bars with an earlier one) spread over several groups."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from market_warehouse.config import load_target
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sources.common import GROUP_FORMATS

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "alphavantage"
DAY = "2021-04-21"


def _lines(name: str, n: int) -> list[str]:
    return gzip.decompress((SAMPLE / name).read_bytes()).decode().splitlines()[:n]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    """Real Alpha Vantage rows (trimmed), some edited into the faults a vendor file has."""
    d = tmp_path_factory.mktemp("group")
    aapl = _lines(f"DA-AAPL-T-{DAY}.csv.gz", 1500)  # 1999-2005: two splits
    amd = _lines(f"DA-AMD-T-{DAY}.csv.gz", 800)
    ba = _lines(f"DA-BA-T-{DAY}.csv.gz", 600)
    header = aapl[0]

    bad = list(ba)  # a file with bad rows, each reason once
    f = bad[10].split(",")
    f[2], f[3] = f[3], str(float(f[2]) + 1)  # high < low
    bad[10] = ",".join(f)
    bad[20] += ",12"  # one field too many: malformed
    bad[30] = ",".join(["2001-13-45", *bad[30].split(",")[1:]])  # unparsable time
    f = bad[40].split(",")
    f[1] = "n/a"  # unparsable number
    bad[40] = ",".join(f)
    bad.append(bad[50])  # an identical repeat: loads once, counted as duplicate
    f = bad[60].split(",")
    f[6] = str(int(f[6]) + 100)
    bad.append(",".join(f))  # the same key with another volume: both quarantined

    later_amd = [header] + amd[700:]  # overlaps the earlier AMD file by 100 bars, other volumes
    for i in range(1, len(later_amd)):
        f = later_amd[i].split(",")
        f[6] = str(int(f[6]) + 1)
        later_amd[i] = ",".join(f)
    plain = ["timestamp,open,high,low,close,volume"] + [",".join(r.split(",")[:5] + [r.split(",")[6]])
                                                        for r in amd[1:200]]

    written = {
        f"DA-AAPL-T-{DAY}.csv": aapl,
        f"DA-BA-T-{DAY}.csv": bad,
        "DA-WRONG-T-2021-04-21.csv": ["date,o,h,l,c"] + ["2020-01-02,1,2,0.5,1.5"],
        f"DA-AMD-T-{DAY}.csv": amd,
        f"DA-BAD SYMBOL-T-{DAY}.csv": aapl[:50],  # the name's symbol is not one: the file is refused
        f"DA-AMDP-T-{DAY}.csv": plain,  # the plain layout: a group of its own
        "DA-AMD-T-2021-04-22.csv": later_amd,  # shares 100 bars with the AMD file: its values win
        f"DA-EMPTY-T-{DAY}.csv": [header],
    }
    paths = []
    for name, lines in written.items():
        (d / name).write_text("\n".join(lines) + "\n")
        paths.append(d / name)
    return paths


BARS = ("select symbol, exchange, interval, ts, open, high, low, close, volume, adj_close, source "
        "from raw.bars order by symbol, ts")
ACTIONS = "select ex_date, symbol, exchange, action, value, source from raw.corporate_actions order by 1, 2, 4"
QUARANTINE = "select source, row_number, record, reason from raw.quarantine order by source, row_number, reason"
RUNS = ("select source, status, rows_read, rows_loaded, rows_replaced, rows_duplicate, rows_quarantined, "
        "error, parameters from raw.loader_runs order by source")


def _load(sink, files, monkeypatch, per_group: int):
    monkeypatch.setenv("MWH_LOAD_GROUP_FILES", str(per_group))
    reports = load_files(sink, files, "alphavantage")
    return [(r.source, r.status, r.rows_read, r.loaded, r.replaced, r.duplicate, r.quarantined, r.error,
             r.examples, r.notes) for r in reports]


def _state(sink) -> dict:
    return {name: sink.query(sql) for name, sql in
            (("bars", BARS), ("actions", ACTIONS), ("quarantine", QUARANTINE), ("runs", RUNS))}


@pytest.mark.parametrize("target", ["duckdb", "timescale"])
def test_a_group_lands_what_one_file_at_a_time_lands(target, files, request, monkeypatch):
    assert "alphavantage" in GROUP_FORMATS
    first = request.getfixturevalue(f"{target}_target")
    with open_sink(first) as sink:
        one = _load(sink, files, monkeypatch, 1)
        expected = _state(sink)
    if target == "duckdb":
        monkeypatch.setenv("MWH_DUCKDB_PATH", str(Path(first.path).with_name("grouped.duckdb")))
    else:
        monkeypatch.setenv("MWH_PG_DATABASE", request.getfixturevalue("pg_database")(timescale=True))
    with open_sink(load_target()) as sink:
        grouped = _load(sink, files, monkeypatch, 3)  # groups cut across the faults
        assert grouped == one
        assert _state(sink) == expected
        again = _load(sink, files, monkeypatch, 100)  # idempotent: a rerun leaves the same bars
        assert _state(sink)["bars"] == expected["bars"]
        assert _state(sink)["actions"] == expected["actions"]

    by_file = {Path(r[0]).name: r for r in one}
    aapl, ba, wrong, amd, badsym, plain, amd2, empty = (by_file[p.name] for p in files)
    assert aapl[1:8] == ("success", 1499, 1499, 0, 0, 0, None)
    assert ba[1] == "success" and ba[5:7] == (1, 6)  # 1 identical repeat, 6 rows quarantined
    reasons = " | ".join(ba[8])
    for why in ("high < low", "unparsable time", "unparsable number in open", "malformed row", "duplicate key"):
        assert why in reasons
    assert wrong[1] == "failed" and "not an Alpha Vantage daily CSV" in wrong[7]
    assert badsym[1] == "failed" and "is not a symbol" in badsym[7] and "nothing loaded" in badsym[7]
    assert plain[1:4] == ("success", 199, 199)
    assert amd[1:6] == ("success", 799, 799, 0, 0)
    assert amd2[1:6] == ("success", 100, 0, 100, 0)  # newest wins, per file
    assert any("shares 100 bars" in n for n in amd2[9])
    assert empty[1:4] == ("success", 0, 0)
    assert again[0][1:6] == ("success", 1499, 0, 0, 1499)
    quarantined = {(Path(s).name, n) for s, n, _, _ in expected["quarantine"]}
    assert (f"DA-BA-T-{DAY}.csv", 11) in quarantined  # file line of bad[10] (header = line 1)
    assert {a[3] for a in expected["actions"] if a[1] == "AAPL"} == {"split"}
