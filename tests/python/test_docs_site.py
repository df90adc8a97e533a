"""The catalog: `mwh docs` builds the dbt docs site into its own folder, `mwh docs --serve` serves it, and
headless Chromium (Debian's `chromium`, installed by `make chromium`) renders the overview page, a mart's
page with its description and columns, and the lineage graph. Screenshots go to artifacts/docs/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from market_warehouse import docs_site
from market_warehouse.cli import main
from market_warehouse.dbt import run_dbt

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "docs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MART = "fct_bars_1d"
MART_DESCRIPTION = "Daily bars, one per symbol and session"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (`make chromium` installs it)")


def _chromium(url: str, *, dom: bool = False, screenshot: Path | None = None) -> str:
    with tempfile.TemporaryDirectory() as profile:
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--window-size=1400,1000"]
        if dom:
            args.append("--dump-dom")
        if screenshot:
            args.append(f"--screenshot={screenshot}")
        proc = subprocess.run([*args, url], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site of a DuckDB warehouse holding one loaded file (raw tables only: the pages of the models come
    from the project, their column types from the catalog once built)."""
    base = tmp_path_factory.mktemp("docs")
    saved = {k: os.environ.get(k) for k in ("MWH_TARGET", "MWH_DUCKDB_PATH")}
    os.environ["MWH_TARGET"] = "duckdb"
    os.environ["MWH_DUCKDB_PATH"] = str(base / "warehouse.duckdb")
    try:
        sample = REPO / "data" / "sample" / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
        assert main(["load", "csv", str(sample), "--format", "alphavantage"]) == 0
        assert main(["docs", "--site-dir", str(base / "site")]) == 0
        yield base / "site"
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_site_in_its_own_folder(site):
    for name in docs_site.SITE_FILES:
        assert (site / name).stat().st_size > 0, name
    catalog = json.loads((site / "catalog.json").read_text())
    assert "ts" in catalog["sources"]["source.market_warehouse.market.bars"]["columns"]
    # A later dbt command writes dbt's target/ (DBT_TARGET_PATH), never the site.
    before = {n: _sha(site / n) for n in ("manifest.json", "index.html")}
    assert run_dbt(["parse"], "duckdb", quiet=True).success
    target = Path(os.environ["DBT_TARGET_PATH"])
    assert (target / "manifest.json").exists() and target.resolve() != site.resolve()
    assert {n: _sha(site / n) for n in before} == before


def test_chromium_renders_overview_mart_and_lineage(site):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = docs_site.serve(site, port=0, quiet=True)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/index.html#!"
        model = f"{base}/model/model.market_warehouse.{MART}"
        pages = {"overview": f"{base}/overview", "mart": model, "lineage": f"{model}?g_v=1"}
        doms = {}
        for name, url in pages.items():
            doms[name] = _chromium(url, dom=True)
            shot = ARTIFACTS / f"{name}.png"
            shot.unlink(missing_ok=True)
            _chromium(url, screenshot=shot)
            assert shot.stat().st_size > 20_000, f"{shot} looks blank"
    finally:
        server.shutdown()
    # The overview is the analyst's page (docs/overview.md), rendered by the app (not in index.html itself).
    assert "Which mart answers which question" in doms["overview"]
    assert "Which mart answers which question" not in (site / "index.html").read_text()
    assert "How to connect" in doms["overview"]
    # The mart's page: its description and its columns, as rendered rows.
    assert MART_DESCRIPTION in doms["mart"]
    for column in ("symbol", "adj_close", "price_factor"):
        assert f'<span class="text-dark ng-binding">{column}</span>' in doms["mart"], column
    # The lineage graph: the modal and its canvas.
    assert "Lineage Graph" in doms["lineage"] and "<canvas" in doms["lineage"]


def test_static_page_opens_from_a_file(site):
    dom = _chromium((site / "static_index.html").as_uri() + f"#!/model/model.market_warehouse.{MART}", dom=True)
    assert MART_DESCRIPTION in dom


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mwh_docs_serve(site):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "market_warehouse.cli", "docs", "--serve", "--no-build",
                             "--site-dir", str(site), "--port", str(port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = b""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/catalog.json", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        assert body == (site / "catalog.json").read_bytes()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out, (out, err)


def test_docs_help_says_dbt_arguments_pass_through(capsys):
    for command in ("docs", "build"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "through to `dbt" in " ".join(capsys.readouterr().out.split())


def _parsers(parser, path=("mwh",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_option_has_help_text():
    from market_warehouse.cli import build_parser

    missing = [f"{' '.join(path)} {a.option_strings or a.dest}"
               for path, parser in _parsers(build_parser()) for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction) and not a.help]
    assert missing == []


def test_ml_models_says_when_the_registry_is_empty(duckdb_target, capsys):
    assert main(["ml", "models"]) == 0
    assert capsys.readouterr().out.strip() == "no models registered yet (register one with `mwh ml register`)"


def test_load_prints_a_wall_time_that_the_per_file_times_do_not_add_up_to(duckdb_target, capsys):
    files = sorted((REPO / "data" / "sample" / "alphavantage").glob("DA-A*.csv.gz"))
    assert len(files) >= 3
    t0 = time.monotonic()
    assert main(["load", "csv", *map(str, files), "--format", "alphavantage"]) == 0
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    (note,) = [ln for ln in out.splitlines() if ln.startswith("wall time ")]
    wall = float(note.split()[2].rstrip("s"))
    assert 0 < wall <= elapsed + 0.05
    assert f"for {len(files)} files (per-file times overlap" in note


@pytest.mark.parametrize("target_fixture", ["duckdb_target", "timescale_target"])
def test_latest_version_views_carry_comments(request, target_fixture):
    """fct_features_daily / _hourly (views over the latest _vN table) carry the table's and columns' comments."""
    from market_warehouse.loaders.sinks import open_sink

    target = request.getfixturevalue(target_fixture)
    sample = REPO / "data" / "sample" / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
    assert main(["load", "csv", str(sample), "--format", "alphavantage"]) == 0
    assert main(["build", "--select", "+fct_features_daily", "+fct_features_hourly"]) == 0
    if target.type == "duckdb":
        view_sql = "select comment from duckdb_views() where schema_name = 'marts' and view_name = ?"
        cols_sql = ("select count(*), count(comment), max(case when column_name = 'rsi_14' then comment end) "
                    "from duckdb_columns() where schema_name = 'marts' and table_name = ?")
    else:
        view_sql = "select obj_description(cast('marts.' || ? as regclass), 'pg_class')"
        cols_sql = ("select count(*), count(col_description(c.oid, a.attnum)), "
                    "max(case when a.attname = 'rsi_14' then col_description(c.oid, a.attnum) end) "
                    "from pg_attribute a join pg_class c on c.oid = a.attrelid "
                    "join pg_namespace n on n.oid = c.relnamespace "
                    "where n.nspname = 'marts' and c.relname = ? and a.attnum > 0 and not a.attisdropped")
    with open_sink(target) as sink:
        for view, version in (("fct_features_daily", 2), ("fct_features_hourly", 1)):
            (comment,), = sink.query(view_sql, [view])
            assert comment.startswith(f"Latest version (v{version}) of {view}, a view of {view}_v{version}.")
            assert "features" in comment.lower()
            n, commented, rsi = sink.query(cols_sql, [view])[0]
            assert n > 10 and commented == n, (view, n, commented)
            assert "RSI" in rsi or "relative strength" in rsi.lower()
        # While the build is here: `mwh status` counts the same sessions behind as the dbt freshness test.
        dbt_rows = sink.query("select symbol, bar_interval, sessions_behind "
                              "from test_failures.bars_are_fresh_stg_market__bars_stale_source")
    from market_warehouse.status import collect

    report = collect(target)
    assert dbt_rows and sorted((s, i, int(n)) for s, i, n in dbt_rows) == sorted(
        (x["symbol"], x["interval"], x["sessions_behind"]) for x in report["sources"])
    if target.type == "postgres":
        _analyst_sees_marts_only(target)


def _analyst_sees_marts_only(target):
    """A role granted `marts` only (as dbt_project.yml and docs/overview.md advise) neither reads nor lists
    the stored test failures, while it reads the marts."""
    import uuid

    import psycopg

    role = f"mwh_test_analyst_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        failures = conn.execute("select count(*) from information_schema.tables "
                                "where table_schema = 'test_failures'").fetchone()[0]
        assert failures > 10  # the build stored its tests' rows
        conn.execute(f'create role "{role}"')
        try:
            conn.execute(f'grant usage on schema marts to "{role}"')
            conn.execute(f'grant select on all tables in schema marts to "{role}"')
            conn.execute(f'set role "{role}"')
            schemas = {s for (s,) in conn.execute(
                "select distinct table_schema from information_schema.tables "
                "where table_schema not in ('information_schema', 'pg_catalog') "
                "and table_schema not like '%timescaledb%'")}  # the extension's own schemas
            assert schemas == {"marts"}, schemas
            assert conn.execute("select count(*) from marts.fct_features_daily").fetchone()[0] > 0
            conn.execute("reset role")
            (name,) = conn.execute("select table_name from information_schema.tables "
                                   "where table_schema = 'test_failures' limit 1").fetchone()
            conn.execute(f'set role "{role}"')
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f'select * from test_failures."{name}"')
        finally:
            conn.execute("reset role")
            conn.execute(f'drop owned by "{role}"')
            conn.execute(f'drop role "{role}"')
