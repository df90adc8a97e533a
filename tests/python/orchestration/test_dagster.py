"""The Dagster orchestration (orchestration/): assets materialized in-process against a real warehouse,
schedules and the retrain sensor evaluated with Dagster's own contexts. Needs the `orchestration` extra
(`make orchestration`); skipped with the reason when it is not installed."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

os.environ.setdefault("MWH_DAGSTER_RETRIES", "0")  # a failing step fails the test now, not after 7 minutes
dg = pytest.importorskip("dagster", reason="the orchestration extra is not installed (make orchestration)")
pytest.importorskip("dagster_dbt", reason="the orchestration extra is not installed (make orchestration)")

from market_warehouse.loaders.sinks import open_sink  # noqa: E402
from market_warehouse.ml.db import open_ml_sink  # noqa: E402
from market_warehouse.ml.queue import RetrainRequest, enqueue, list_requests  # noqa: E402
from orchestration.automation import retrain_claim, retrain_queue_sensor, schedules  # noqa: E402
from orchestration.dbt_assets import dagster_target_path  # noqa: E402
from orchestration.definitions import build_definitions  # noqa: E402
from orchestration.loaders import LOADER_ASSETS_DEFS, LoadConfig, file_drops  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
AV = REPO / "data" / "sample" / "alphavantage"
SYMBOLS = ("AAPL", "MSFT")


@pytest.fixture(scope="module")
def defs():
    """The definitions as `dagster dev` loads them (dbt parse included), once for the module."""
    return build_definitions()


def write_sources(tmp: Path, crypto: bool = False) -> Path:
    drop = tmp / "drop"
    (drop / "av").mkdir(parents=True, exist_ok=True)
    (drop / "ml").mkdir(parents=True, exist_ok=True)
    for sym in SYMBOLS:
        shutil.copy(AV / f"DA-{sym}-T-2021-04-21.csv.gz", drop / "av")
    text = ("sources:\n"
            "  - name: av_daily\n    type: files\n    glob: drop/av/*.csv.gz\n    format: alphavantage\n"
            "  - name: predictions\n    type: ml\n    kind: predictions\n    glob: drop/ml/*.jsonl\n")
    if crypto:
        text += "  - name: filusdt\n    type: files\n    glob: drop/fil/*.csv.gz\n    format: binance-klines\n"
    path = tmp / "sources.yml"
    path.write_text(text)
    return path


def _materialized(result, key: str) -> dict:
    [mat] = [m for m in result.get_asset_materialization_events()
             if m.asset_key == dg.AssetKey.from_user_string(key)]
    return {k: v.value for k, v in mat.materialization.metadata.items()}


def _materialize_scenario(defs, tmp_path, monkeypatch, target) -> None:
    monkeypatch.setenv("MWH_SOURCES", str(write_sources(tmp_path)))
    repo = defs.get_repository_def()
    dbt_def = repo.assets_defs_by_key[dg.AssetKey(["marts", "fct_bars_1d"])]
    selection = (dg.AssetSelection.assets(dg.AssetKey(["marts", "fct_bars_1d"])).upstream()
                 | dg.AssetSelection.assets(dg.AssetKey(["loaders", "ml_records"])))
    loaders = [repo.assets_defs_by_key[dg.AssetKey(["loaders", n])] for n in ("file_drops", "yfinance", "ml_records")]
    result = dg.materialize([*loaders, dbt_def], selection=selection, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure][:3]

    # the loaders ran as upstream assets: the file drop loaded both files, the empty sources found nothing
    files = _materialized(result, "loaders/file_drops")
    assert (files["files_loaded"], files["files_failed"], files["sources"]) == (2, 0, 1)
    assert _materialized(result, "loaders/yfinance")["sources"] == 0
    assert _materialized(result, "loaders/ml_records")["files_loaded"] == 0
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["sources_loaded"] is True
    # dbt's tests ran as asset checks, and the mart has every loaded bar
    assert len(checks) > 5 and not [n for n, ok in checks.items() if not ok and "warn" not in n]
    # dbt ran with `buildable` indirect selection, set for its process only: this process's own dbt
    # runs (the other tests') keep dbt's default
    [run_results] = sorted(dagster_target_path().parent.glob("dagster-run-*/run_results.json"),
                           key=lambda p: p.stat().st_mtime)[-1:]
    assert json.loads(run_results.read_text())["args"]["indirect_selection"] == "buildable"
    assert "DBT_INDIRECT_SELECTION" not in os.environ
    with open_sink(target, tables=()) as sink:
        raw = dict(sink.query("select symbol, count(*) from raw.bars group by symbol"))
        mart = dict(sink.query("select symbol, count(*) from marts.fct_bars_1d group by symbol"))
        audit = sink.query("select count(*) from raw.loader_runs where status = 'success'")[0][0]
    assert set(mart) == set(SYMBOLS) and mart == raw and min(mart.values()) > 5000
    assert sum(mart.values()) == files["rows_new"]
    assert audit == 2

    # the ledger is mwh run's: a second materialization of the loaders finds nothing new
    again = dg.materialize(LOADER_ASSETS_DEFS, selection=[dg.AssetKey(["loaders", "file_drops"])])
    assert _materialized(again, "loaders/file_drops")["files_unchanged"] == 2
    assert _materialized(again, "loaders/file_drops")["rows_new"] == 0


def test_assets_materialize_duckdb(defs, duckdb_target, tmp_path, monkeypatch):
    _materialize_scenario(defs, tmp_path, monkeypatch, duckdb_target)
    # the schedules' run config fits their jobs (the loader ops' names and config)
    repo = defs.get_repository_def()
    for schedule in repo.schedule_defs:
        job = repo.get_job(schedule.job_name)
        config = {"ops": {op: {"config": {"sources": "x.yml", "names": []}}
                          for op in ("loaders__file_drops", "loaders__yfinance", "loaders__ml_records")
                          if op in {n.name for n in job.graph.node_defs}}}
        assert dg.validate_run_config(job, config), schedule.name
    # mwh run's lock is shared: while it is held, a loader step fails with one line
    with open(f"{duckdb_target.path}.run.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(dg.Failure, match="another mwh run is in progress"):
            file_drops(dg.build_asset_context(), LoadConfig())
    # a wrong sources file: one line naming it
    with pytest.raises(dg.Failure, match="sources file not found"):
        file_drops(dg.build_asset_context(), LoadConfig(sources=str(tmp_path / "nope.yml")))


def test_assets_materialize_timescale(defs, timescale_target, tmp_path, monkeypatch):
    _materialize_scenario(defs, tmp_path, monkeypatch, timescale_target)


def _tick(schedule, when: dt.datetime):
    with dg.instance_for_test() as instance:
        return schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))


def test_schedules_follow_the_exchange_calendars(tmp_path, monkeypatch):
    sched = {s.name: s for s in schedules()}
    assert set(sched) == {"daily_xnys", "daily_xlon", "daily_xtks", "daily_xtse", "crypto_intraday_every_n_minutes"}
    # after the regular close, local time, weekdays
    assert (sched["daily_xnys"].cron_schedule, sched["daily_xnys"].execution_timezone) == \
        ("30 16 * * 1-5", "America/New_York")
    assert (sched["daily_xlon"].cron_schedule, sched["daily_xtks"].cron_schedule) == ("0 17 * * 1-5", "0 16 * * 1-5")
    monkeypatch.setenv("MWH_SOURCES", str(write_sources(tmp_path, crypto=True)))
    ny, tokyo = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")

    # an open session: one run of the daily job, keyed by calendar and session
    data = _tick(sched["daily_xnys"], dt.datetime(2021, 4, 23, 16, 30, tzinfo=ny))
    [req] = data.run_requests
    assert req.run_key == "XNYS:2021-04-23" and req.tags["mwh/session_date"] == "2021-04-23"
    assert req.run_config["ops"]["loaders__file_drops"]["config"]["sources"] == str(tmp_path / "sources.yml")
    assert sched["daily_xnys"].job_name == "daily_load_and_build"
    # closed sessions are skipped with the reason: Good Friday, a Saturday, Tokyo's Showa Day
    for schedule, when, day in ((sched["daily_xnys"], dt.datetime(2021, 4, 2, 16, 30, tzinfo=ny), "2021-04-02"),
                                (sched["daily_xnys"], dt.datetime(2021, 4, 24, 16, 30, tzinfo=ny), "2021-04-24"),
                                (sched["daily_xtks"], dt.datetime(2021, 4, 29, 16, 0, tzinfo=tokyo), "2021-04-29")):
        data = _tick(schedule, when)
        assert not data.run_requests and f"no session on {day}" in data.skip_message
    # an early close (NYSE, the day after Thanksgiving 2021, 13:00) is open; before the close: not yet
    assert _tick(sched["daily_xnys"], dt.datetime(2021, 11, 26, 16, 30, tzinfo=ny)).run_requests
    assert "not yet" in _tick(sched["daily_xnys"], dt.datetime(2021, 11, 26, 12, 0, tzinfo=ny)).skip_message

    # crypto: every 15 minutes, 24/7, only the crypto entries of the sources file
    crypto = sched["crypto_intraday_every_n_minutes"]
    assert crypto.cron_schedule == "*/15 * * * *"
    [req] = _tick(crypto, dt.datetime(2021, 4, 24, 3, 15, tzinfo=dt.UTC)).run_requests
    assert req.run_config["ops"]["loaders__file_drops"]["config"]["names"] == ["filusdt"]
    assert crypto.job_name == "crypto_intraday"
    monkeypatch.setenv("MWH_SOURCES", str(write_sources(tmp_path / "nocrypto")))
    assert "no crypto source" in _tick(crypto, dt.datetime(2021, 4, 24, 3, 15, tzinfo=dt.UTC)).skip_message


def _sense():
    with dg.instance_for_test() as instance:
        return retrain_queue_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_retrain_sensor_fires_only_with_pending_work(duckdb_target, tmp_path, monkeypatch):
    monkeypatch.delenv("MWH_RETRAIN_COMMAND", raising=False)
    assert "MWH_RETRAIN_COMMAND is not set" in _sense().skip_message
    ok = f"{sys.executable} -c \"import json, os; assert json.loads(os.environ['MWH_RETRAIN_REQUEST'])['model_name']\""
    monkeypatch.setenv("MWH_RETRAIN_COMMAND", ok)
    # no warehouse yet (the sensor does not create one), then an empty queue: no run
    assert "no claimable request" in _sense().skip_message and not Path(duckdb_target.path).exists()
    with open_ml_sink(duckdb_target):
        pass
    assert "no claimable request" in _sense().skip_message
    with open_ml_sink(duckdb_target) as sink:
        [(_, rid)] = enqueue(sink, [RetrainRequest("direction", "accuracy drift", 2)])
    [req] = _sense().run_requests
    assert req.run_key == f"{rid}:0" and req.tags["mwh/retrain_request"] == rid

    # the run claims it, runs the command, completes it; the queue is empty again
    assert retrain_claim.execute_in_process().success
    with open_ml_sink(duckdb_target) as sink:
        assert [(r[0], r[3], r[5]) for r in list_requests(sink)] == [(rid, "completed", 1)]
    assert "no claimable request" in _sense().skip_message

    # a failing command: the run fails, the request goes back to pending with the error (attempt 1 of 3)
    with open_ml_sink(duckdb_target) as sink:
        [(_, rid2)] = enqueue(sink, [RetrainRequest("direction", "psi drift", 1)])
    monkeypatch.setenv("MWH_RETRAIN_COMMAND", f"{sys.executable} -c \"raise SystemExit(4)\"")
    assert not retrain_claim.execute_in_process(raise_on_error=False).success
    with open_ml_sink(duckdb_target) as sink:
        row = next(r for r in list_requests(sink) if r[0] == rid2)
        err = sink.query("select error from raw.ml_retrain_queue where request_id = ?", [rid2])[0][0]
    assert row[3] == "pending" and row[5] == 1 and err.startswith("exit 4")
    [req] = _sense().run_requests  # pending again: a new run key (attempts 1)
    assert req.run_key == f"{rid2}:1"
