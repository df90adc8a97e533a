"""The bench's own measures (benchmarks/scale/run.py): the room a run takes on disk (DiskSampler, each
filesystem once), a command's peak RSS (run_measured), its own, not the bench process's, and a failed `mwh`
step, which stops the run instead of printing a failure's figures."""

from __future__ import annotations

import os
import sys
import time

import pytest

from benchmarks.scale import run as bench
from benchmarks.scale.run import (
    DiskSampler,
    StepFailed,
    disk_paths,
    provisioned_data_dir,
    run_measured,
    run_mwh,
)

MB = 1 << 20
# The writes below are 512 MB and the checks ask for 200 MB: the other pytest worker shares the filesystem
# and may free space while a test writes.


def test_the_sampler_sees_what_a_run_wrote_and_then_removed(tmp_path):
    (tmp_path / "a").mkdir()
    with DiskSampler([tmp_path, tmp_path / "a", tmp_path / "missing"], interval=0.02) as disk:
        assert disk.paths == [tmp_path]  # one filesystem, sampled once; a missing folder is left out
        scratch = tmp_path / "scratch"
        _write(scratch, 512)
        time.sleep(0.3)
        scratch.unlink()
    assert disk.start[tmp_path] - disk.lowest[tmp_path] >= 200 * MB
    assert disk.needed[tmp_path] >= 200 * MB, disk.needed
    assert "the run took up to" in disk.line() and str(tmp_path) in disk.line()


def test_room_freed_first_is_not_counted_as_room_left(tmp_path):
    """A run that removes the previous run's files, then writes as much again, took that much."""
    old = tmp_path / "previous_warehouse"
    _write(old, 512)
    with DiskSampler([tmp_path], interval=0.02) as disk:
        time.sleep(0.1)
        old.unlink()
        time.sleep(0.3)
        _write(tmp_path / "warehouse", 512)
        time.sleep(0.3)
    assert disk.needed[tmp_path] >= 200 * MB, disk.needed


def _write(path, mb: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(mb):
            fh.write(b"\1" * MB)
        fh.flush()
        os.fsync(fh.fileno())


def test_the_provisioned_servers_data_directory_is_sampled_too(tmp_path, monkeypatch):
    monkeypatch.delenv("MWH_TEST_PG_HOST", raising=False)
    monkeypatch.setenv("MWH_TSDB_ROOT", str(tmp_path / "root"))
    assert provisioned_data_dir() == tmp_path / "root" / "srv" / "mwh" / "pgdata"
    assert disk_paths(tmp_path, {"host": "127.0.0.1"}) == [tmp_path, tmp_path / "root" / "srv" / "mwh" / "pgdata"]
    assert disk_paths(tmp_path, None) == [tmp_path]
    monkeypatch.setenv("MWH_TEST_PG_HOST", "db.example")  # the user's own server: not on these disks
    assert disk_paths(tmp_path, {"host": "db.example"}) == [tmp_path]


def test_a_commands_peak_rss_is_its_own_not_the_benchs():
    held = bytearray(600 * MB)  # the bench holding memory (the DuckDB baseline, the latency queries)
    for i in range(0, len(held), 4096):
        held[i] = 1
    small = run_measured([sys.executable, "-c", "pass"])
    large = run_measured([sys.executable, "-c", "b = bytearray(300 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1"])
    failed = run_measured([sys.executable, "-c", "raise SystemExit(3)"])
    del held
    assert small["rc"] == 0 and small["rss"] < 100 * MB, small
    assert 300 * MB <= large["rss"] < 500 * MB, large
    assert failed["rc"] == 3 and failed["cpu"] > 0


def test_a_failed_mwh_step_raises_with_the_command_log_and_reason(tmp_path):
    log = tmp_path / "duckdb.log"
    env = {**os.environ, "MWH_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}
    with pytest.raises(StepFailed) as failed:
        run_mwh(["--target", "no_such", "build"], env, log, None)
    message = str(failed.value)
    assert "`mwh --target no_such build` exited 2" in message, message
    assert str(log) in message and "no target 'no_such'" in message, message
    assert "\n" not in message
    assert run_mwh(["--help"], env, log, None)["rc"] == 0  # a step that succeeds returns its measures


def test_the_bench_stops_at_a_failed_build_with_one_line(tmp_path, monkeypatch, capsys):
    """The real mwh, pointed at a project folder without a dbt project: the full build fails, and the run stops
    there with exit 1 and one line, printing no build, ratio or slowest-node figures (before, it went on and
    printed 0.0 s builds, a 104% ratio and the slowest nodes of an earlier run's run_results.json)."""
    monkeypatch.setattr(bench, "REPO", tmp_path)  # data, work folders and mwh's working directory
    (tmp_path / "empty_project").mkdir()
    monkeypatch.setenv("MWH_PROJECT_DIR", str(tmp_path / "empty_project"))
    assert bench.main(["--size", "small", "--targets", "duckdb", "--bulk-load", "--runs", "1"]) == 1
    out, err = capsys.readouterr()
    assert "load       bulk (read_csv" in out  # the landing ran, then the first build failed
    assert "build models" not in out and "incremental/full" not in out and "nodes" not in out, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench-scale: `mwh build --full-refresh"), err
    assert "exited 2" in lines[0] and "no dbt_project.yml in" in lines[0] and "the run stops here" in lines[0], err
