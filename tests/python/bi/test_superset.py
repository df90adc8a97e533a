"""A real BI client: Apache Superset (from .venv-bi, bi/requirements.lock) against a TimescaleDB warehouse
as mwh_analyst. The dashboard of bi/dashboards/ is provisioned as code through Superset's REST API, each
chart's query must return the rows the mart holds, and headless Chromium must draw every chart (the
screenshot is saved to artifacts/bi/market_overview.png). `make test-bi` runs it.
"""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import socket
import struct
import time
from pathlib import Path

import psycopg
import pytest

from market_warehouse import roles
from market_warehouse.cli import main
from market_warehouse.config import load_target

REPO = Path(__file__).resolve().parents[3]
VENV_BI = REPO / ".venv-bi"
SHOT = REPO / "artifacts" / "bi" / "market_overview.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.bi,
    pytest.mark.postgres,
    pytest.mark.skipif(not (VENV_BI / "bin" / "superset").exists(),
                       reason=".venv-bi missing: `make test-bi` installs Superset (bi/requirements.lock)"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (`make chromium` installs it)"),
]


def _superset_bi():
    spec = importlib.util.spec_from_file_location("superset_bi", REPO / "bi" / "superset_bi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_superset_dashboard_on_marts_as_analyst(timescale_target, monkeypatch, tmp_path, capsys):
    t0 = time.monotonic()
    monkeypatch.setenv("MWH_ANALYST_PASSWORD", secrets.token_urlsafe(12))
    monkeypatch.setenv("MWH_BI_HOME", str(tmp_path / "bi"))
    monkeypatch.setenv("MWH_BI_ADMIN_PASSWORD", secrets.token_urlsafe(12))
    monkeypatch.setenv("MWH_BI_DATABASE", timescale_target.dbname)
    assert main(["roles"]) == 0
    monkeypatch.setenv("MWH_PG_USER", roles.LOADER)
    assert main(["load", "csv", "data/sample/alphavantage/DA-AAPL-T-2021-04-21.csv.gz",
                 "data/sample/alphavantage/DA-MSFT-T-2021-04-21.csv.gz", "--format", "alphavantage"]) == 0
    monkeypatch.setenv("MWH_PG_USER", roles.TRANSFORMER)
    assert main(["build", "--select", "+fct_bars_1d", "--exclude-resource-type", "test", "unit_test"]) == 0
    monkeypatch.setenv("MWH_PG_USER", timescale_target.user)
    t_warehouse = time.monotonic() - t0
    with psycopg.connect(load_target().conninfo().replace(f"user={timescale_target.user}",
                                                          f"user={roles.ANALYST}")) as conn:
        bars, series, symbols = conn.execute(
            "select count(*), count(distinct (date_trunc('month', ts), symbol)), count(distinct symbol) "
            "from marts.fct_bars_1d").fetchone()
    assert bars > 10_000 and symbols == 2

    bi = _superset_bi()
    t1 = time.monotonic()
    bi.init_metadata()
    t_init = time.monotonic() - t1
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "superset.log", "wb") as log:
        proc = bi.start_server(port, log=log)
        try:
            t_start = bi.wait_healthy(url, proc)
            client = bi.Client(url)
            (dashboard,) = bi.provision(client)
            assert bi.provision(client)[0]["charts"] == dashboard["charts"]  # idempotent: same ids
            charts = dict(dashboard["charts"])
            assert len(charts) == 3

            # The connection is mwh_analyst's, and every chart's query returns what the mart holds.
            db = client.find("database", database_name=bi.DATABASE_NAME)
            uri = client.get(f"/api/v1/database/{db['id']}/connection")["result"]["sqlalchemy_uri"]
            assert f"{roles.ANALYST}:" in uri or f"//{roles.ANALYST}@" in uri, uri
            # Its pickers offer the marts, not the stored test failures nor the inputs (bi/superset_config.py).
            schemas = set(client.get(f"/api/v1/database/{db['id']}/schemas/?q=(force:!t)")["result"])
            assert "marts" in schemas and not schemas & {"test_failures", "raw", "staging", "intermediate",
                                                         "reference", "snapshots"}, schemas
            assert bi.chart_rows(client, charts["Adjusted close by month"]) == series
            assert bi.chart_rows(client, charts["Sessions per symbol"]) == symbols
            res = client.get(f"/api/v1/chart/{charts['Daily bars loaded']}/data/?format=json&force=true")
            assert res["result"][0]["data"] == [{"daily bars": bars}]

            state = bi.screenshot(url, dashboard["url"], SHOT, expect_charts=3, chromium=CHROMIUM)
        finally:
            bi.stop_server(proc)
    assert state["errors"] == [] and state["drawn"] == 3 and state["holders"] == 3, state
    png = SHOT.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1600, 1400)
    assert len(png) > 30_000  # three drawn charts, not a blank page
    with capsys.disabled():
        print(f"\nsuperset test: {time.monotonic() - t0:.0f}s (warehouse {t_warehouse:.0f}s, superset metadata "
              f"init {t_init:.0f}s, server start {t_start:.0f}s); screenshot {SHOT.relative_to(REPO)}")
