"""Continuous aggregates built by dbt (materialization `continuous_aggregate`) against the incremental
fallback the same model files build elsewhere: same rows on the same data, after late and corrected
minute bars once refreshed (by the policy's job, by refresh_continuous_aggregate, by a dbt run with the
example profile's autocommit and by one without it, through the job), real-time
rows before any refresh, --full-refresh and changed definitions rebuilt, history kept after retention."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from conftest import conninfo

import market_fixtures
from market_fixtures import assert_frames_match, dbt, load_sample, pg_create_raw, pg_upsert

pytestmark = pytest.mark.postgres

ROLLUPS = ["int_market__bars_rolled_up_5m", "int_market__bars_rolled_up_15m", "int_market__bars_rolled_up_1h"]
SELECT = ["--select", "stg_market__bars", *ROLLUPS, "fct_bars_1h",
          "--exclude-resource-type", "test", "unit_test"]
KEY = ["symbol", "exchange", "ts"]
FALLBACK = ["--vars", "{mwh_continuous_aggregates: false}"]


class Pair:
    """The same raw data in two databases on one full-edition server: `cagg` builds the rollups as
    continuous aggregates, `fallback` as incremental tables (var mwh_continuous_aggregates: false)."""

    def __init__(self, server: dict, make, extra_vars: str | None = None):
        self.server = server
        self.cagg, self.fallback = make(), make()
        self.vars = extra_vars
        market_fixtures.PG_DSN = (f"host={server['host']} port={server['port']} user={server['user']}"
                                  + (f" password={server['password']}" if server["password"] else ""))
        for db in (self.cagg, self.fallback):
            pg_create_raw(db, timescale=True)

    def upsert(self, bars: pd.DataFrame) -> None:
        for db in (self.cagg, self.fallback):
            pg_upsert(db, bars)

    def build(self, which: str, *args: str) -> None:
        os.environ["MWH_PG_DATABASE"] = getattr(self, which)
        vars_ = ["--vars", self.vars] if self.vars and which == "cagg" else []
        if which == "fallback":
            vars_ = ["--vars", "{mwh_continuous_aggregates: false"
                     + (", " + self.vars.strip("{}") if self.vars else "") + "}"]
        dbt("build", *SELECT, *vars_, *args)

    def sql(self, which: str, query: str, params=None) -> list[tuple]:
        with psycopg.connect(conninfo(self.server, getattr(self, which)), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def frame(self, which: str, relation: str) -> pd.DataFrame:
        with psycopg.connect(conninfo(self.server, getattr(self, which))) as conn:
            cur = conn.execute(f"select * from {relation}")
            df = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
        for col in df.columns:
            if len(df[col].dropna()) and hasattr(df[col].dropna().iloc[0], "tzinfo"):
                df[col] = pd.to_datetime(df[col], utc=True)
        return df.sort_values(KEY).reset_index(drop=True)

    def assert_equal(self, relations=None, what: str = "") -> None:
        for rel in relations or [f"intermediate.{r}" for r in ROLLUPS]:
            assert_frames_match(self.frame("cagg", rel), self.frame("fallback", rel), f"{what} {rel}")

    def is_cagg(self, model: str) -> bool:
        return self.sql("cagg", "select count(*) from timescaledb_information.continuous_aggregates"
                                " where view_schema = 'intermediate' and view_name = %s", [model])[0][0] == 1

    def refreshes_logged(self, *args: str) -> list[str]:
        """Build `cagg`; the refresh lines its run wrote to dbt's log (one per aggregate). The run logs to a
        directory of its own: the session's dbt.log rotates at 10 MB, and a rotation during this build left an
        offset into the old file pointing past the end of the new one (CI, 2026-11-23)."""
        Path(os.environ["DBT_LOG_PATH"]).mkdir(parents=True, exist_ok=True)
        logs = Path(tempfile.mkdtemp(prefix="refresh-log-", dir=os.environ["DBT_LOG_PATH"]))
        self.build("cagg", *args, "--log-path", str(logs))
        with (logs / "dbt.log").open(errors="replace") as f:
            lines = [line.strip().split(".")[-1] for line in f if ": refreshed " in line]
        return sorted(line.replace('"', "") for line in lines)

    def job(self, model: str) -> int:
        return self.sql("cagg", "select job_id from timescaledb_information.jobs where proc_name ="
                                " 'policy_refresh_continuous_aggregate' and hypertable_name = %s", [model])[0][0]


def _minute_bars() -> pd.DataFrame:
    bars, _ = load_sample(symbols=[], crypto=True)  # FILUSDT, Feb and Apr 2023, 83,520 minute bars
    bars["loaded_at"] = datetime.now(UTC) - timedelta(days=2)
    return bars


def _at(ts: str) -> pd.Timestamp:
    return pd.Timestamp(ts, tz="UTC")


def test_cagg_equals_incremental_fallback(pg_server, full_edition):
    pair = Pair(pg_server, full_edition)
    bars = _minute_bars()
    late = bars["ts"] == _at("2023-04-30 10:30")
    new = bars["ts"] >= _at("2023-04-30 20:00")
    corrected = bars["ts"] == _at("2023-04-30 12:00")
    first = bars[~late & ~new].copy()
    first.loc[corrected, ["high", "volume"]] = first.loc[corrected, ["high", "volume"]] * [1.5, 10]
    pair.upsert(first)
    pair.build("cagg")
    pair.build("fallback")
    assert all(pair.is_cagg(m) for m in ROLLUPS)
    assert pair.sql("fallback", "select count(*) from timescaledb_information.continuous_aggregates")[0][0] == 0
    pair.assert_equal(what="first build:")

    def hour(which: str, ts: str) -> tuple:
        return pair.sql(which, "select volume, source_bar_count from intermediate.int_market__bars_rolled_up_1h"
                               " where ts = %s", [_at(ts).to_pydatetime()])[0]

    # a corrected bar: materialized buckets keep the old value until refreshed, here by the policy's job
    fix = bars[corrected].copy()
    fix["loaded_at"] = datetime.now(UTC)
    pair.upsert(fix)
    stale = hour("cagg", "2023-04-30 12:00")
    pair.build("fallback")
    assert stale != hour("fallback", "2023-04-30 12:00")
    for model in ROLLUPS:
        pair.sql("cagg", f"call run_job({pair.job(model)})")
    pair.assert_equal(what="corrected bar, refreshed by run_job:")

    # a late bar, refreshed by refresh_continuous_aggregate
    arrived = bars[late].copy()
    arrived["loaded_at"] = datetime.now(UTC)
    pair.upsert(arrived)
    pair.build("fallback")
    assert hour("cagg", "2023-04-30 10:00")[1] == 59 and hour("fallback", "2023-04-30 10:00")[1] == 60
    for model in ROLLUPS:
        pair.sql("cagg", f"call refresh_continuous_aggregate('intermediate.{model}', null, null)")
    pair.assert_equal(what="late bar, refresh_continuous_aggregate:")

    # new bars past the materialized range: real-time aggregation shows them before any refresh
    arrived = bars[new].copy()
    arrived["loaded_at"] = datetime.now(UTC)
    pair.upsert(arrived)
    pair.build("fallback")
    assert hour("cagg", "2023-04-30 23:00") == pytest.approx(hour("fallback", "2023-04-30 23:00"), rel=1e-12)
    pair.assert_equal(what="real-time, not yet materialized:")
    watermark = pair.sql("cagg", "select _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark("
                                 "(select mat_hypertable_id from _timescaledb_catalog.continuous_agg"
                                 " where user_view_name = 'int_market__bars_rolled_up_1h')))")[0][0]
    assert watermark <= _at("2023-04-30 20:00")

    # a dbt run refreshes them itself (refresh_continuous_aggregate between dbt's transactions: the
    # profile's autocommit), not through the policies' jobs: materialized, and the marts agree
    refreshed = pair.refreshes_logged()
    # in one pass, as the policy (buckets_per_batch 0), not a manual refresh's default of ten buckets a batch
    assert refreshed == sorted(f"{m}: refreshed (null, null; buckets_per_batch 0)" for m in ROLLUPS), refreshed
    watermark = pair.sql("cagg", "select _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark("
                                 "(select mat_hypertable_id from _timescaledb_catalog.continuous_agg"
                                 " where user_view_name = 'int_market__bars_rolled_up_1h')))")[0][0]
    assert watermark == _at("2023-05-01 00:00")
    pair.assert_equal([*(f"intermediate.{r}" for r in ROLLUPS), "marts.fct_bars_1h"], "after dbt run:")
    assert len(pair.frame("cagg", "marts.fct_bars_1h")) == len(bars) // 60

    # a profile without autocommit (a user's own): each refresh is the policy's job, started and waited for
    fix = bars[bars["ts"] == _at("2023-04-30 21:00")].copy()
    fix[["high", "volume"]] = fix[["high", "volume"]] * [1.5, 10]
    fix["loaded_at"] = datetime.now(UTC)
    pair.upsert(fix)
    pair.build("fallback")
    profile = Path(os.environ["DBT_PROFILES_DIR"]) / "profiles.yml"
    own = Path(os.environ["DBT_TARGET_PATH"]).parent / "profile_without_autocommit"
    own.mkdir(exist_ok=True)
    text = profile.read_text()
    assert text.count("autocommit: true") == 2
    (own / "profiles.yml").write_text(text.replace("autocommit: true", "autocommit: false"))
    os.environ["DBT_PROFILES_DIR"] = str(own)
    try:
        refreshed = pair.refreshes_logged()
    finally:
        os.environ["DBT_PROFILES_DIR"] = str(profile.parent)
    assert refreshed == sorted(f"{m}: refreshed by job {pair.job(m)}" for m in ROLLUPS), refreshed
    pair.assert_equal([*(f"intermediate.{r}" for r in ROLLUPS), "marts.fct_bars_1h"], "refreshed by the job:")


def test_full_refresh_and_changed_definition_rebuild(pg_server, full_edition):
    pair = Pair(pg_server, full_edition)
    pair.upsert(_minute_bars())
    pair.build("cagg")

    def oid() -> int:
        return pair.sql("cagg", "select 'intermediate.int_market__bars_rolled_up_1h'::regclass::oid")[0][0]

    def comment() -> str:
        return pair.sql("cagg", "select obj_description('intermediate.int_market__bars_rolled_up_1h'::regclass, 'pg_class')")[0][0]

    before, rows = oid(), pair.frame("cagg", "intermediate.int_market__bars_rolled_up_1h")
    assert "mwh:definition_md5=" in comment() and "Hourly" in comment()  # the docs' description stays
    pair.build("cagg")
    assert oid() == before, "an unchanged continuous aggregate is kept (refreshed, not rebuilt)"
    pair.build("cagg", "--full-refresh")
    assert oid() != before, "--full-refresh rebuilds it"
    rebuilt = oid()
    assert_frames_match(pair.frame("cagg", "intermediate.int_market__bars_rolled_up_1h"), rows, "after --full-refresh")

    # a definition built from other SQL (an earlier version of the model): detected and rebuilt
    pair.sql("cagg", "comment on view intermediate.int_market__bars_rolled_up_1h is 'mwh:definition_md5=0123456789abcdef0123456789abcdef'")
    pair.build("cagg")
    assert oid() != rebuilt
    assert "0123456789abcdef" not in comment()
    assert_frames_match(pair.frame("cagg", "intermediate.int_market__bars_rolled_up_1h"), rows, "after a changed definition")

    # dbt docs: the continuous aggregates are in the catalog with their columns
    os.environ["MWH_PG_DATABASE"] = pair.cagg
    dbt("docs", "generate", "--select", *ROLLUPS)
    import json
    catalog = json.loads((__import__("pathlib").Path(os.environ["DBT_TARGET_PATH"]) / "catalog.json").read_text())
    node = catalog["nodes"]["model.market_warehouse.int_market__bars_rolled_up_1h"]
    assert {"symbol", "ts", "open", "close", "vwap", "source_loaded_at"} <= set(node["columns"])


def test_retention_keeps_rollup_history(pg_server, full_edition):
    """Minute bars deleted by the retention job (and by `mwh retention --apply` on the fallback): the
    rollups keep every bucket, on both paths, through later builds and refreshes."""
    from market_warehouse import retention

    pair = Pair(pg_server, full_edition, extra_vars="{mwh_minute_bars_retention_days: 30}")
    bars = _minute_bars()
    pair.upsert(bars)
    pair.build("cagg")
    pair.build("fallback")
    history = {r: pair.frame("cagg", f"intermediate.{r}") for r in ROLLUPS}
    assert len(history["int_market__bars_rolled_up_1h"]) == len(bars) // 60
    policy = pair.sql("cagg", "select config from timescaledb_information.jobs where proc_name ="
                              " 'policy_refresh_continuous_aggregate' and hypertable_name = 'int_market__bars_rolled_up_1h'")[0][0]
    assert policy["start_offset"] == "29 days", policy  # the refresh window stays inside the retention

    # full edition: the policy job deletes minute bars older than 30 days (all of 2023)
    with psycopg.connect(conninfo(pg_server, pair.cagg), autocommit=True) as conn:
        lines = retention.install_policies(conn, retention.settings(mwh_minute_bars_retention_days=30))
        assert any("1-minute bars older than 30 days" in line for line in lines)
        job = conn.execute("select job_id from timescaledb_information.jobs where proc_name = 'mwh_minute_bars_retention'").fetchone()[0]
        conn.execute(f"call run_job({job})")
    # the fallback: mwh retention --apply, the same delete
    os.environ["MWH_PG_DATABASE"] = pair.fallback
    assert retention.run(None, True, False, 30, None, out=lambda line: None) == 0
    for which in ("cagg", "fallback"):
        assert pair.sql(which, "select count(*) from raw.bars where \"interval\" = '1m'")[0][0] == 0

    pair.build("cagg")
    pair.build("fallback")
    for model in ROLLUPS:
        pair.sql("cagg", f"call run_job({pair.job(model)})")
    for r in ROLLUPS:
        assert_frames_match(pair.frame("cagg", f"intermediate.{r}"), history[r], f"cagg {r} after retention")
        assert_frames_match(pair.frame("fallback", f"intermediate.{r}"), history[r], f"fallback {r} after retention")
