"""Groups of files parsed in parse processes (MWH_LOAD_PARSE_PROCESSES=2; the default 1 parses in the
loading process) land exactly what the loading process lands when it parses them itself: the same
reports, bars, corporate actions, quarantine rows (file, line, reason) and audit rows, on real
databases, with the faults of tests/python/loaders/test_group_parse.py spread over several groups.
A reload writes nothing new. A wrong setting
is one line (ConfigError: `mwh: configuration: ...`); a script without a `__main__` guard does not run again in
the parse processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_group_parse import _load, _state, files  # noqa: F401 - `files` is a fixture

from market_warehouse.config import ConfigError, load_target
from market_warehouse.loaders import pipeline
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink

REPO = Path(__file__).resolve().parents[3]


def _with(monkeypatch, processes: int, sink, paths, per_group: int = 3):
    monkeypatch.setenv("MWH_LOAD_PARSE_PROCESSES", str(processes))
    return _load(sink, paths, monkeypatch, per_group)


def _parse_pids() -> set[int]:
    pool = pipeline._pool
    return set(pool[1]._processes) if pool is not None and pool[1]._processes else set()


@pytest.mark.parametrize("target", ["duckdb", "timescale"])
def test_parse_processes_land_what_the_loading_process_lands(target, files, request, monkeypatch):  # noqa: F811
    first = request.getfixturevalue(f"{target}_target")
    pipeline.shutdown_parse_processes()
    with open_sink(first) as sink:
        here = _with(monkeypatch, 1, sink, files)
        expected = _state(sink)
    assert not _parse_pids()  # =1 starts no process
    if target == "duckdb":
        monkeypatch.setenv("MWH_DUCKDB_PATH", str(Path(first.path).with_name("processes.duckdb")))
    else:
        monkeypatch.setenv("MWH_PG_DATABASE", request.getfixturevalue("pg_database")(timescale=True))
    with open_sink(load_target()) as sink:
        apart = _with(monkeypatch, 2, sink, files)
        pids = _parse_pids()
        assert pids and os.getpid() not in pids  # the groups after the first were parsed elsewhere
        assert apart == here
        assert _state(sink) == expected
        again = _with(monkeypatch, 2, sink, files)  # idempotent: nothing new, the same rows
        state = _state(sink)
        assert state["bars"] == expected["bars"] and state["actions"] == expected["actions"]
        assert sum(r[3] for r in again) == 0  # no bar loaded twice
        assert sum(r[3] for r in here) > 0


def test_a_wrong_setting_is_one_line(files, duckdb_target, monkeypatch):  # noqa: F811
    for bad in ("0", "two"):
        monkeypatch.setenv("MWH_LOAD_PARSE_PROCESSES", bad)
        with open_sink(duckdb_target) as sink, pytest.raises(ConfigError, match="MWH_LOAD_PARSE_PROCESSES="):
            load_files(sink, files, "alphavantage")


def test_a_script_without_a_main_guard_runs_once(files, duckdb_target, tmp_path):  # noqa: F811
    """multiprocessing hands a new process the script it was started from, which then runs again
    unless guarded; the parse processes are started without it."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import sys\n"
        "from market_warehouse.loaders.pipeline import load_files\n"
        "from market_warehouse.loaders.sinks.duckdb_sink import DuckDBSink\n"
        "from market_warehouse.loaders.schema import MARKET_TABLES\n"
        "print('script ran', flush=True)\n"
        "sink = DuckDBSink(sys.argv[1])\n"
        "sink.ensure_tables(MARKET_TABLES)\n"
        "reports = load_files(sink, sys.argv[2:], 'alphavantage')\n"
        "print('loaded', sum(r.loaded for r in reports), flush=True)\n")
    env = {**os.environ, "MWH_LOAD_PARSE_PROCESSES": "2", "MWH_LOAD_GROUP_FILES": "2",
           "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "w.duckdb"), *map(str, files)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("script ran") == 1
    assert "loaded 0" not in out.stdout and "loaded" in out.stdout
