"""Schedules and the retrain sensor.

- `daily_<mic>` (xnys, xlon, xtks, xtse: the calendars of seeds/trading_sessions.csv): every weekday,
  MWH_DAILY_DELAY_MINUTES (default 30) after the exchange's regular close, in its time zone (from
  seeds/exchanges.csv; the regular close is the most common close of the seed's last 250 sessions).
  A day the calendar has no session (weekend, holiday) is skipped with the reason, as
  `mwh run --skip-closed` does; an open day runs `daily_load_and_build` (every loader, then dbt on
  what they feed) once (run key `<MIC>:<session date>`). MWH_SOURCES_<MIC> gives an exchange its own
  sources file.
- `crypto_intraday`: every MWH_CRYPTO_EVERY_MINUTES (default 15) minutes, the file drops of crypto
  sources (format binance-klines, or an `exchange` whose calendar is 24/7) and dbt on what they feed.
- `retrain_queue_sensor`: when raw.ml_retrain_queue has a claimable request (pending, or processing
  with its lease expired), one `retrain_claim` run per request; the run claims the most urgent request,
  runs MWH_RETRAIN_COMMAND with the claim as JSON in MWH_RETRAIN_REQUEST, then completes it (exit 0) or
  fails it (back to pending while attempts < MWH_RETRAIN_MAX_ATTEMPTS, default 3).
Schedules and sensor start stopped: turn them on in the UI or with `dagster schedule start`.
"""


import datetime as dt
import json
import os
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from market_warehouse.config import ConfigError, load_target, project_dir
from market_warehouse.jobs import SEEDS_SESSIONS, JobConfigError, load_config, session_is_open
from orchestration.loaders import LOADER_KEYS, default_sources_file

EXCHANGES_SEED = "seeds/exchanges.csv"
CRYPTO_CALENDAR = "24/7"
CRYPTO_FORMATS = ("binance-klines",)


def _minutes(var: str, default: int) -> int:
    raw = os.environ.get(var, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r}: not a whole number of minutes") from None
    if not 0 <= value < 24 * 60:
        raise ConfigError(f"{var}={raw}: must be between 0 and 1439 minutes")
    return value


@lru_cache(maxsize=1)
def _sessions() -> pd.DataFrame:
    return pd.read_csv(project_dir() / SEEDS_SESSIONS, usecols=["calendar", "session_date", "close_utc"],
                       dtype=str)


@lru_cache(maxsize=1)
def _exchanges() -> pd.DataFrame:
    return pd.read_csv(project_dir() / EXCHANGES_SEED, dtype=str)


def calendar_timezones() -> dict[str, str]:
    """calendar -> time zone, for the calendars of the trading-sessions seed."""
    ex = _exchanges().drop_duplicates("calendar").set_index("calendar")["timezone"]
    return {cal: ex[cal] for cal in sorted(_sessions()["calendar"].unique()) if cal in ex.index}


def session_close(calendar: str, day: str) -> pd.Timestamp | None:
    """The session's close (UTC), or None if the calendar has no session that day."""
    s = _sessions()
    row = s[(s["calendar"] == calendar) & (s["session_date"] == day)]
    return None if row.empty else pd.Timestamp(row["close_utc"].iloc[0]).tz_convert("UTC")


def regular_close(calendar: str, timezone: str, today: str | None = None) -> dt.time:
    """The most common local close time of the calendar's last 250 sessions up to today."""
    s = _sessions()
    today = today or pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    recent = s[(s["calendar"] == calendar) & (s["session_date"] <= today)].tail(250)
    local = pd.to_datetime(recent["close_utc"], utc=True).dt.tz_convert(timezone)
    return dt.time.fromisoformat(local.dt.strftime("%H:%M").mode().iloc[0])


def daily_cron(calendar: str, timezone: str, delay_minutes: int) -> str:
    close = regular_close(calendar, timezone)
    at = dt.datetime.combine(dt.date(2000, 1, 3), close) + dt.timedelta(minutes=delay_minutes)
    return f"{at.minute} {at.hour} * * 1-5"


def _loader_config(sources: str, names: list[str] | None = None) -> dict:
    cfg = {"sources": sources, "names": names or []}
    return {"ops": {"loaders__file_drops": {"config": cfg}, "loaders__yfinance": {"config": cfg},
                    "loaders__ml_records": {"config": cfg}}}


# ---- jobs -----------------------------------------------------------------------------------------------

def asset_jobs(dbt_assets_def: dg.AssetsDefinition) -> list:
    from dagster_dbt import build_dbt_asset_selection

    seeds = build_dbt_asset_selection([dbt_assets_def], dbt_select="resource_type:seed")
    loaders = dg.AssetSelection.assets(*LOADER_KEYS.values())
    daily = dg.define_asset_job(
        "daily_load_and_build", selection=loaders.downstream() | seeds,
        description="Every loader of the sources file, then dbt build on the models they feed (seeds too).")
    crypto = dg.define_asset_job(
        "crypto_intraday", selection=dg.AssetSelection.assets(LOADER_KEYS["files"]).downstream() | seeds,
        description="The crypto file drops, then dbt build on the models the bars feed.")
    return [daily, crypto]


# ---- schedules -------------------------------------------------------------------------------------------

def _now(context) -> pd.Timestamp:
    when = context.scheduled_execution_time
    return pd.Timestamp(when) if when is not None else pd.Timestamp.now(tz="UTC")


def daily_schedule(calendar: str, timezone: str, delay_minutes: int) -> dg.ScheduleDefinition:
    cron = daily_cron(calendar, timezone, delay_minutes)

    @dg.schedule(name=f"daily_{calendar.lower()}", cron_schedule=cron, execution_timezone=timezone,
                 job_name="daily_load_and_build", default_status=dg.DefaultScheduleStatus.STOPPED,
                 description=f"{calendar}: load and build {delay_minutes} min after the close "
                             f"({cron}, {timezone}); closed sessions skipped")
    def _daily(context: dg.ScheduleEvaluationContext):
        now = _now(context)
        day = now.tz_convert(timezone).strftime("%Y-%m-%d")
        try:
            is_open = session_is_open(calendar, day)
        except JobConfigError as exc:
            return dg.SkipReason(str(exc))
        if not is_open:
            return dg.SkipReason(f"skipped: {calendar} has no session on {day}")
        close = session_close(calendar, day)
        if close is not None and now < close:
            return dg.SkipReason(f"{calendar} {day}: the session closes at {close:%H:%M} UTC, not yet")
        sources = os.environ.get(f"MWH_SOURCES_{calendar}") or default_sources_file()
        return dg.RunRequest(run_key=f"{calendar}:{day}", run_config=_loader_config(sources),
                             tags={"mwh/calendar": calendar, "mwh/session_date": day})

    return _daily


def crypto_sources(path: str) -> list[str]:
    """The crypto entries of a sources file: files of a crypto format or of a 24/7 exchange."""
    ex = _exchanges()
    around_the_clock = set(ex.loc[ex["calendar"] == CRYPTO_CALENDAR, "exchange"])
    return [s.name for s in load_config(path).sources
            if s.type == "files" and (s.format in CRYPTO_FORMATS
                                      or s.options.get("exchange") in around_the_clock)]


def crypto_schedule(every_minutes: int) -> dg.ScheduleDefinition:
    cron = f"*/{every_minutes} * * * *" if every_minutes < 60 else f"0 */{every_minutes // 60} * * *"

    @dg.schedule(name="crypto_intraday_every_n_minutes", cron_schedule=cron, execution_timezone="UTC",
                 job_name="crypto_intraday", default_status=dg.DefaultScheduleStatus.STOPPED,
                 description=f"crypto drops every {every_minutes} min ({cron}, UTC; 24/7)")
    def _crypto(context: dg.ScheduleEvaluationContext):
        path = default_sources_file()
        try:
            names = crypto_sources(path)
        except JobConfigError as exc:
            return dg.SkipReason(str(exc))
        if not names:
            return dg.SkipReason(f"{path}: no crypto source (files of format binance-klines or a 24/7 exchange)")
        cfg = {"sources": path, "names": names}
        return dg.RunRequest(run_key=f"crypto:{_now(context):%Y-%m-%dT%H:%M}",
                             run_config={"ops": {"loaders__file_drops": {"config": cfg}}},
                             tags={"mwh/calendar": CRYPTO_CALENDAR})

    return _crypto


def schedules() -> list[dg.ScheduleDefinition]:
    delay = _minutes("MWH_DAILY_DELAY_MINUTES", 30)
    every = _minutes("MWH_CRYPTO_EVERY_MINUTES", 15)
    if every < 1:
        raise ConfigError("MWH_CRYPTO_EVERY_MINUTES=0: must be at least 1")
    return [*(daily_schedule(cal, tz, delay) for cal, tz in calendar_timezones().items()),
            crypto_schedule(every)]


# ---- the retrain queue ----------------------------------------------------------------------------------

def claimable_requests(limit: int = 10) -> list[tuple[str, int]]:
    """(request_id, attempts) of the requests a claim would take, most urgent first."""
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.ml.schema import RETRAIN_QUEUE

    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    target = load_target()
    if target.type == "duckdb" and not Path(target.path).exists():
        return []  # nothing loaded yet (and the sensor does not create the file)
    schema, name = RETRAIN_QUEUE.qualified.split(".")
    with open_sink(target, tables=()) as sink:
        exists = sink.query(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name])[0][0]
        if not exists:
            return []
        rows = sink.query(
            f"select request_id, attempts from {RETRAIN_QUEUE.qualified} where status = 'pending' or "
            f"(status = 'processing' and lease_expires_at < ?) order by priority, inserted_at, request_id "
            f"limit {int(limit)}", [now])
    return [(str(r), int(a)) for r, a in rows]


class RetrainConfig(dg.Config):
    command: str = Field(default="", description="the training command (default: MWH_RETRAIN_COMMAND)")
    worker: str = Field(default="", description="worker name on the claim (default: dagster-<run id>)")
    lease_seconds: int = Field(default=15 * 60, description="the claim's lease; also the command's timeout")
    max_attempts: int = Field(default=3, description="a failed request goes back to pending below this")


@dg.op(description="Claim the most urgent retrain request, run the training command, complete or fail it.")
def claim_and_retrain(context: dg.OpExecutionContext, config: RetrainConfig) -> None:
    from market_warehouse.ml.db import open_ml_sink
    from market_warehouse.ml.queue import claim, complete, fail

    command = config.command or os.environ.get("MWH_RETRAIN_COMMAND", "")
    if not command.strip():
        raise dg.Failure(description="no training command: set MWH_RETRAIN_COMMAND (or the op's `command`)")
    worker = config.worker or f"dagster-{context.run_id[:8]}"
    try:
        target = load_target()
    except ConfigError as exc:
        raise dg.Failure(description=str(exc)) from None
    with open_ml_sink(target) as sink:
        got = claim(sink, worker, config.lease_seconds)
    if got is None:
        context.log.info("nothing to claim (another worker took it)")
        return
    request = {"request_id": got.request_id, "model_name": got.model_name, "model_id": got.model_id,
               "reason": got.reason, "priority": got.priority, "attempts": got.attempts,
               "lease_expires_at": got.lease_expires_at.isoformat(), "worker": worker}
    context.log.info(f"claimed {got.request_id} ({got.model_name}, attempt {got.attempts}): {command}")
    try:
        proc = subprocess.run(shlex.split(command), env={**os.environ, "MWH_RETRAIN_REQUEST": json.dumps(request)},
                              capture_output=True, text=True, timeout=config.lease_seconds, cwd=project_dir())
        code, tail = proc.returncode, (proc.stdout + proc.stderr).strip()[-2000:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, tail = -1, f"{type(exc).__name__}: {exc}"
    if tail:
        context.log.info(tail)
    with open_ml_sink(target) as sink:
        if code == 0:
            complete(sink, got.request_id, worker)
            context.log.info(f"completed {got.request_id}")
            return
        retry = got.attempts < config.max_attempts
        fail(sink, got.request_id, worker, f"exit {code}: {tail[-500:]}", retry=retry)
    raise dg.Failure(description=f"retrain of {got.model_name} ({got.request_id}) exited {code}; "
                                 f"{'back to pending' if retry else 'marked failed'}")


@dg.job(description="Claim one retrain request and run the training command (MWH_RETRAIN_COMMAND).")
def retrain_claim():
    claim_and_retrain()


@dg.sensor(job=retrain_claim, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="A retrain_claim run per claimable request of raw.ml_retrain_queue.")
def retrain_queue_sensor(context: dg.SensorEvaluationContext):
    if not os.environ.get("MWH_RETRAIN_COMMAND", "").strip():
        return dg.SkipReason("MWH_RETRAIN_COMMAND is not set: nothing would train a claimed request")
    try:
        requests = claimable_requests()
    except ConfigError as exc:
        return dg.SkipReason(f"warehouse settings: {exc}")
    except Exception as exc:  # noqa: BLE001 - a busy or unreachable warehouse: try again next tick
        return dg.SkipReason(f"warehouse not readable now ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    if not requests:
        return dg.SkipReason("the retrain queue has no claimable request")
    return [dg.RunRequest(run_key=f"{rid}:{attempts}", tags={"mwh/retrain_request": rid})
            for rid, attempts in requests]
