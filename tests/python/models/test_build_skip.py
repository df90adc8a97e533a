"""A plain `mwh build` leaves out the models whose inputs did not change since the last successful build
(market_warehouse/build_state.py), and only those: on a real DuckDB warehouse with real loads, every
model downstream of a source that received rows is rebuilt and holds the new rows; a first build, a
failed or unfinished build, a changed project and --full-refresh rebuild everything."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from market_warehouse.build_report import last_run_results
from market_warehouse.build_state import STATE_TABLE
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink

from market_fixtures import assert_frames_match

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample" / "alphavantage"
AAPL = SAMPLE / "DA-AAPL-T-2021-04-21.csv.gz"
MSFT = SAMPLE / "DA-MSFT-T-2021-04-21.csv.gz"
MODELS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
# Downstream of raw.bars: must run whenever bars are loaded.
BARS_MODELS = {"stg_market__bars", "fct_bars_1d", "int_market__ewm_states_daily", "fct_features_daily",
               "fct_latest_bars", "fct_data_quality_issues", "fct_value_at_risk"}
# Read nothing the bars loads touch (ML and microstructure sources, absent here).
UNTOUCHED = {"stg_ml__signals", "fct_agent_episodes", "stg_microstructure__trades", "metricflow_time_spine"}
# Read the bars, but have rows only with predictions or signals (meta empty_without_sources on the first
# two): left out after a bars load while there are none.
ML_FROM_BARS = {"int_ml__bars_indexed", "fct_ml_unmatched_records", "int_ml__record_bars",
                "fct_prediction_outcomes", "fct_signal_outcomes", "fct_model_performance"}


# Views on incremental models only: new bars change nothing in them, so a bars load leaves them standing.
STANDING_VIEWS = {"model.market_warehouse.fct_features_daily.v1", "model.market_warehouse.fct_training_set_daily",
                  "model.market_warehouse.sem_market__daily_returns"}


def _ran() -> set[str]:
    return {r.node.name for r in last_run_results() if str(r.status) == "success"}


def _ran_ids() -> set[str]:
    return {r.node.unique_id for r in last_run_results() if str(r.status) == "success"}


def _assert_views_stand_with_new_rows(target) -> None:
    """The views left standing by the last build were not re-created, and they show MSFT's new rows."""
    assert not STANDING_VIEWS & _ran_ids()
    for view in ("marts.fct_features_daily_v1", "marts.fct_training_set_daily", "marts.sem_market__daily_returns"):
        assert _query(target, f"select count(*) from {view} where symbol = 'MSFT'")[0][0] > 0, view


def _load(target, *files: Path) -> None:
    with open_sink(target) as sink:
        reports = load_files(sink, [str(p) for p in files], "alphavantage")
    assert all(r.status == "success" for r in reports), [r.line() for r in reports]


def _query(target, sql: str) -> list[tuple]:
    with open_sink(target, tables=()) as sink:
        return sink.query(sql)


def test_plain_build_skips_only_unchanged_inputs(duckdb_target):
    from market_warehouse.cli import main as mwh

    target = duckdb_target
    _load(target, AAPL)
    # A first build: everything, and the state is kept.
    assert mwh(["build", *MODELS]) == 0
    first = _ran()
    assert first >= BARS_MODELS | UNTOUCHED
    assert len(_query(target, f"select * from {STATE_TABLE}")) == 1

    # Nothing loaded: the models of unchanged inputs are left out; the clock's still run.
    assert mwh(["build", *MODELS]) == 0
    idle = _ran()
    assert "int_market__build_marks" in idle  # reads run_started_at
    # a view that reads the clock keeps its definition; the table that stores its rows is built again
    assert "stg_ml__retrain_queue" not in idle and "fct_retrain_requests" in idle
    assert not (UNTOUCHED | {"fct_bars_1d", "stg_market__bars"}) & idle
    assert len(idle) < len(first)

    # New bars (a new symbol): everything downstream of raw.bars runs and holds them; the rest is left out.
    _load(target, MSFT)
    assert mwh(["build", *MODELS]) == 0
    after_load = _ran()
    assert after_load >= BARS_MODELS
    assert not (UNTOUCHED | ML_FROM_BARS) & after_load
    for table in ("marts.fct_bars_1d", "marts.fct_features_daily_v2", "marts.fct_latest_bars",
                  "intermediate.int_market__ewm_states_daily"):
        assert _query(target, f"select count(*) from {table} where symbol = 'MSFT'")[0][0] > 0, table
    _assert_views_stand_with_new_rows(target)
    # The same rows as a full rebuild (the skipped models too).
    before = {t: _query(target, f"select count(*) from {t}")[0][0]
              for t in ("marts.fct_bars_1d", "marts.fct_latest_bars", "marts.fct_data_quality_issues")}

    # A changed project (another fingerprint stored): everything.
    _query(target, f"update {STATE_TABLE} set project = 'another project'")
    assert mwh(["build", *MODELS]) == 0
    assert _ran() >= BARS_MODELS | UNTOUCHED

    # A build that did not finish leaves no state: the next build runs everything.
    _query(target, f"delete from {STATE_TABLE}")
    assert mwh(["build", *MODELS]) == 0
    assert _ran() >= BARS_MODELS | UNTOUCHED

    # --full-refresh runs everything, and keeps the state.
    assert mwh(["build", "--full-refresh", *MODELS]) == 0
    assert _ran() >= BARS_MODELS | UNTOUCHED
    assert len(_query(target, f"select * from {STATE_TABLE}")) == 1
    assert before == {t: _query(target, f"select count(*) from {t}")[0][0] for t in before}

    # A selected build runs its selection and leaves the state as it was.
    assert mwh(["build", "--select", "fct_bars_1d", *MODELS]) == 0
    assert _ran() == {"fct_bars_1d"}
    assert len(_query(target, f"select * from {STATE_TABLE}")) == 1
    # --vars may build what a plain build would not: the state is removed, the next plain build runs everything.
    assert mwh(["build", "--select", "fct_bars_1d", "--vars", "{}", *MODELS]) == 0
    assert _query(target, f"select count(*) from {STATE_TABLE}")[0][0] == 0


def test_plain_build_skips_on_postgres(timescale_target):
    """TimescaleDB: the fingerprints are the loaders' audit rows and the server's counters
    (build_state._postgres_fingerprints), not a count of the bars. A load is seen at once; a delete made by
    hand (no loader, no audit row) is seen through the counters of the chunks it touched."""
    import time

    from market_warehouse import build_state
    from market_warehouse.cli import main as mwh
    from market_warehouse.dbt import Warehouse

    target = timescale_target
    _load(target, AAPL)
    assert mwh(["build", *MODELS]) == 0
    assert _ran() >= BARS_MODELS | UNTOUCHED
    assert len(_query(target, f"select * from {STATE_TABLE}")) == 1

    assert mwh(["build", *MODELS]) == 0
    idle = _ran()
    assert "int_market__build_marks" in idle
    assert not (UNTOUCHED | {"fct_bars_1d", "stg_market__bars"}) & idle

    _load(target, MSFT)
    assert mwh(["build", *MODELS]) == 0
    after_load = _ran()
    assert after_load >= BARS_MODELS
    assert not (UNTOUCHED | ML_FROM_BARS) & after_load  # raw.ml_predictions and raw.ml_signals: no table
    assert _query(target, "select count(*) from marts.fct_features_daily_v2 where symbol = 'MSFT'")[0][0] > 0
    # the tables under them were changed in place: PostgreSQL's drop ... cascade never reached the views
    _assert_views_stand_with_new_rows(target)

    def bars_fingerprint() -> str:
        with Warehouse(target) as wh:
            return build_state._postgres_fingerprints(wh, [("raw", "bars")], wh.relations())[("raw", "bars")]

    # A delete by hand: no audit row; the chunks' counters change once the deleting session ends.
    before = bars_fingerprint()
    _query(target, "delete from raw.bars where symbol = 'MSFT' and ts >= '2021-01-01'")
    deadline = time.monotonic() + 30
    while bars_fingerprint() == before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert bars_fingerprint() != before
    assert mwh(["build", *MODELS]) == 0
    assert {"stg_market__bars", "fct_bars_1d", "fct_latest_bars"} <= _ran()
    assert not UNTOUCHED & _ran()


def test_bars_load_runs_the_ml_marts_once_there_are_signals(duckdb_target, tmp_path):
    """The other side of empty_without_sources: with a signal recorded, a bars load runs the models that
    judge it, and its outcome moves on with the new bar. A BUY on AAPL's 2021-04-20 close (133.11), target
    133.5: open with no bar after it; once 2021-04-21 is loaded (open 132.36, high 133.75), the target is
    reached in one bar."""
    from market_warehouse.cli import main as mwh
    from market_warehouse.ml.db import open_ml_sink
    from market_warehouse.ml.records import write_records

    target = duckdb_target
    without_last = tmp_path / "DA-AAPL-T-2021-04-20.csv"
    frame = pd.read_csv(AAPL)
    frame[frame["timestamp"] < "2021-04-21"].to_csv(without_last, index=False)
    _load(target, without_last)
    with open_ml_sink(target) as sink:
        report = write_records(sink, "signals", [{
            "strategy": "hand", "symbol": "AAPL", "signal_ts": "2021-04-20T00:00:00+00:00", "signal_type": "BUY",
            "entry_price": 133.11, "target_price": 133.5, "stop_price": 120.0, "latency_ms": 10.0}])
    assert report.status == "success", report.line()
    assert mwh(["build", *MODELS]) == 0
    outcome = "select outcome, exit_price, bars_held from marts.fct_signal_outcomes where strategy = 'hand'"
    assert _query(target, outcome) == [("open", None, None)]

    _load(target, AAPL)  # bars only: the signals are unchanged, but not empty
    assert mwh(["build", *MODELS]) == 0
    assert {"int_ml__bars_indexed", "fct_ml_unmatched_records", "fct_signal_outcomes"} <= _ran()
    # a view on tables the build re-creates is re-created too (on PostgreSQL they would drop it)
    assert "sem_ml__signal_books" in _ran()
    assert _query(target, outcome) == [("target", 133.5, 1)]


# Read minute bars only (mwh_read_interval('1m')), or hourly and minute bars: left out after a daily load.
MINUTE_ONLY = {"int_market__bars_rolled_up_5m", "int_market__bars_rolled_up_15m", "int_market__bars_rolled_up_1h",
               "int_market__bars_rolled_up_1d", "fct_bars_1m", "fct_bars_1h",
               "int_market__ewm_states_hourly", "fct_features_hourly", "fct_labels_hourly",
               "fct_realized_volatility_daily", "fct_market_stats_24h", "fct_volume_profile"}
FILUSDT = [REPO / "data" / "sample" / "binance_klines" / f"FILUSDT-1m-2023-{m}.csv.gz" for m in ("02", "04")]
# Every relation the sequence below writes that a build-time column does not make differ between two builds.
COMPARED = ["staging.stg_market__bars", "intermediate.int_market__bars_rolled_up_5m",
            "intermediate.int_market__bars_rolled_up_1h", "intermediate.int_market__bars_rolled_up_1d",
            "intermediate.int_market__bars_unioned_1d", "marts.fct_bars_1m", "marts.fct_bars_1h", "marts.fct_bars_1d",
            "marts.fct_features_hourly_v1", "marts.fct_features_daily_v2", "marts.fct_labels_hourly",
            "marts.fct_realized_volatility_daily", "marts.fct_market_stats_24h", "marts.fct_volume_profile",
            "marts.fct_bar_gaps"]


def _rows(target, relation: str) -> pd.DataFrame:
    """A relation's rows, without its build-time columns (loaded_at, checked_through_*, ..._at), in the order
    of their other values than floats."""
    schema, name = relation.split(".")
    columns = [c for (c,) in _query(target, "select column_name from information_schema.columns where "
                                            f"table_schema = '{schema}' and table_name = '{name}' order by ordinal_position")
               if not c.endswith("_at") and not c.startswith("checked_through")]
    assert columns, relation
    listed = ", ".join(f'"{c}"' for c in columns)
    rows = _query(target, f"select {listed} from {relation}")
    return pd.DataFrame(sorted(rows, key=lambda row: repr([v for v in row if not isinstance(v, float)])),
                        columns=columns)


def test_plain_build_follows_bars_by_interval(duckdb_target):
    """A load of daily bars alone leaves out the models that read minute bars only (mwh_read_interval), and a
    load of minute bars runs them again; the audit rows of raw.loader_runs (read for load marks only) run
    nothing by themselves. After daily, minute, daily, minute loads, every relation holds the rows of a full
    refresh."""
    from market_warehouse.cli import main as mwh

    target = duckdb_target
    _load(target, AAPL)
    with open_sink(target) as sink:
        assert all(r.status == "success" for r in load_files(sink, [str(FILUSDT[0])], "binance-klines"))
    assert mwh(["build", *MODELS]) == 0
    assert _ran() >= MINUTE_ONLY | BARS_MODELS

    _load(target, MSFT)  # daily bars only
    assert mwh(["build", *MODELS]) == 0
    daily = _ran()
    assert daily >= BARS_MODELS | {"int_market__bars_unioned_1d"}
    assert not MINUTE_ONLY & daily, sorted(MINUTE_ONLY & daily)

    with open_sink(target) as sink:  # minute bars only
        assert all(r.status == "success" for r in load_files(sink, [str(FILUSDT[1])], "binance-klines"))
    assert mwh(["build", *MODELS]) == 0
    minute = _ran()
    assert minute >= MINUTE_ONLY | {"stg_market__bars", "int_market__bars_unioned_1d", "fct_bars_1d"}
    assert _query(target, "select count(*) from marts.fct_bars_1m where ts >= '2023-04-01'")[0][0] > 0

    # A failed load writes an audit row and no bar: nothing downstream of the bars runs.
    with open_sink(target) as sink:
        reports = load_files(sink, [str(REPO / "data" / "sample" / "alphavantage" / "DA-BF.B-T-2021-04-21.csv")],
                             "alphavantage")
    assert [r.status for r in reports] == ["failed"]
    assert mwh(["build", *MODELS]) == 0
    assert not ({"stg_market__bars", "fct_bars_1d"} | MINUTE_ONLY) & _ran()

    built = {relation: _rows(target, relation) for relation in COMPARED}
    assert mwh(["build", "--full-refresh", *MODELS]) == 0
    for relation in COMPARED:
        # floats to 1e-12 relative: a sum's order differs between an incremental run and a full refresh;
        # and 1e-10 absolute, one unit of the features' rounding (var feature_round_digits, 10): a value
        # that close to a rounding boundary rounds either way (hourly bollinger_pct_b_20 0.6227926353 vs
        # 0.6227926354 once the read-back was cut to what the windows need)
        assert_frames_match(_rows(target, relation), built[relation], relation, rtol=1e-12, atol=1e-10)


def test_selected_build_of_changed_project_is_not_trusted_later(duckdb_target, tmp_path, monkeypatch):
    """A selected build leaves the stored state as it was when the project is the one the state was stored
    for; built from other files, the models it writes no longer follow from that project, so the state goes
    and the next plain build runs every node. Here `fct_latest_bars` is edited to hold no rows, built alone,
    and the edit undone: the plain build after must build it again (it was left out, still empty)."""
    from market_warehouse.cli import main as mwh

    from market_fixtures import copy_project

    project = copy_project(tmp_path / "project")
    monkeypatch.setenv("MWH_PROJECT_DIR", str(project))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    _load(duckdb_target, AAPL)
    assert mwh(["build", *MODELS]) == 0
    model = next(project.glob("models/**/fct_latest_bars.sql"))
    original = model.read_text()
    assert original.rstrip().endswith("select * from final")
    # the same project: a selected build keeps the state
    assert mwh(["build", "--select", "dim_symbols", *MODELS]) == 0
    assert len(_query(duckdb_target, f"select * from {STATE_TABLE}")) == 1
    # another project: the selected build removes it
    model.write_text(original.rstrip() + " where false\n")
    assert mwh(["build", "--select", "fct_latest_bars", *MODELS]) == 0
    assert _query(duckdb_target, "select count(*) from marts.fct_latest_bars")[0][0] == 0
    assert _query(duckdb_target, f"select count(*) from {STATE_TABLE}")[0][0] == 0
    model.write_text(original)
    assert mwh(["build", *MODELS]) == 0
    assert "fct_latest_bars" in _ran()
    assert _query(duckdb_target, "select count(*) from marts.fct_latest_bars")[0][0] == 1


def test_views_left_standing_only_on_relations_changed_in_place(duckdb_target):
    """views_left_standing on the project's own parsed graph: a view stands when the models it reads are
    changed in place or not run, and not when one is re-created (a table, an incremental model configured
    `full_refresh: true`) or when the view itself is missing."""
    from market_warehouse.build_state import built_nodes, views_left_standing
    from market_warehouse.dbt import run_dbt

    parsed = run_dbt(["parse", "--no-write-json"], duckdb_target, quiet=True)
    assert parsed.success, parsed.exception
    manifest = parsed.result
    v1, v2 = "model.market_warehouse.fct_features_daily.v1", "model.market_warehouse.fct_features_daily.v2"
    training = "model.market_warehouse.fct_training_set_daily"
    books = "model.market_warehouse.sem_ml__signal_books"
    everything = set(built_nodes(manifest))

    standing = views_left_standing(manifest, everything, set())
    assert standing >= STANDING_VIEWS  # on incremental models (training: on v2 and the labels)
    assert books not in standing  # on tables the build re-creates
    assert books in views_left_standing(manifest, everything - set(manifest.nodes[books].depends_on.nodes), set())
    assert v1 not in views_left_standing(manifest, everything, {v1})  # missing: created

    manifest.nodes[v2].config.full_refresh = True  # v2 replaced on every run: the views on it are re-created
    standing = views_left_standing(manifest, everything, set())
    assert v1 not in standing and training not in standing
    assert "model.market_warehouse.sem_market__daily_returns" in standing
