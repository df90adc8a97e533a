"""Apache Superset against the warehouse as `mwh_analyst`: start it, provision the dashboard as code, check it.

    python bi/superset_bi.py up [--port 8088]       # `make bi`: init once, serve, provision, print the URL
    python bi/superset_bi.py provision --url URL    # (re)provision bi/dashboards/*.yml, idempotent
    python bi/superset_bi.py check --url URL        # each chart's query through the API: rows per chart
    python bi/superset_bi.py screenshot --url URL --out artifacts/bi/market_overview.png

Superset runs from its own venv (.venv-bi, bi/requirements.lock); this script needs only the standard
library and PyYAML, so the tests import it from the project's venv. Settings, all from the environment:

    MWH_PG_HOST, MWH_PG_PORT        the TimescaleDB/PostgreSQL server (127.0.0.1, 5433)
    MWH_BI_DATABASE                 the database Superset reads (default MWH_PG_DATABASE, market_warehouse)
    MWH_ANALYST_PASSWORD            mwh_analyst's password (`mwh roles` sets it from the same variable)
    MWH_BI_HOME                     Superset's metadata database and secret key (default .bi/)
    MWH_BI_ADMIN_PASSWORD           the Superset admin's password (default: generated into MWH_BI_HOME)
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import http.cookiejar
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

BI_DIR = Path(__file__).resolve().parent
REPO = BI_DIR.parent
VENV_BI = Path(os.environ.get("MWH_BI_VENV") or REPO / ".venv-bi")
DASHBOARDS = BI_DIR / "dashboards"
DATABASE_NAME = "market_warehouse (mwh_analyst)"
ADMIN = "admin"


class BIError(Exception):
    """A one-line reason the BI server cannot be started, provisioned or checked."""


def bi_home() -> Path:
    home = Path(os.environ.get("MWH_BI_HOME") or REPO / ".bi").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def admin_password() -> str:
    if os.environ.get("MWH_BI_ADMIN_PASSWORD"):
        return os.environ["MWH_BI_ADMIN_PASSWORD"]
    path = bi_home() / "admin_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(18))
        path.chmod(0o600)
    return path.read_text().strip()


def warehouse_uri() -> str:
    """SQLAlchemy URI of the warehouse as mwh_analyst (the password from the environment only)."""
    host = os.environ.get("MWH_PG_HOST", "127.0.0.1")
    port = os.environ.get("MWH_PG_PORT", "5433")
    db = os.environ.get("MWH_BI_DATABASE") or os.environ.get("MWH_PG_DATABASE", "market_warehouse")
    password = os.environ.get("MWH_ANALYST_PASSWORD", "")
    auth = "mwh_analyst" + (":" + urllib.parse.quote(password, safe="") if password else "")
    return f"postgresql+psycopg2://{auth}@{host}:{port}/{urllib.parse.quote(db, safe='')}"


def superset_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SUPERSET_CONFIG_PATH=str(BI_DIR / "superset_config.py"), MWH_BI_HOME=str(bi_home()),
               FLASK_APP="superset", SUPERSET_LOAD_EXAMPLES="no", PYTHONUNBUFFERED="1")
    return env


def _superset(*args: str) -> None:
    exe = VENV_BI / "bin" / "superset"
    if not exe.exists():
        raise BIError(f"{exe} not found: `make bi` installs Superset into {VENV_BI} (bi/requirements.lock)")
    proc = subprocess.run([str(exe), *args], env=superset_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BIError(f"superset {' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def init_metadata() -> bool:
    """Create Superset's metadata database, its admin and its roles once (stamped); True when it ran."""
    stamp = bi_home() / "initialized"
    key = hashlib.sha256((BI_DIR / "requirements.lock").read_bytes()).hexdigest()  # a new Superset migrates
    if stamp.exists() and stamp.read_text() == key:
        return False
    _superset("db", "upgrade")
    _superset("fab", "create-admin", "--username", ADMIN, "--firstname", "mwh", "--lastname", "admin",
              "--email", "admin@localhost", "--password", admin_password())
    _superset("init")
    stamp.write_text(key)
    return True


def start_server(port: int, host: str = "127.0.0.1", log=None) -> subprocess.Popen:
    gunicorn = VENV_BI / "bin" / "gunicorn"
    if not gunicorn.exists():
        raise BIError(f"{gunicorn} not found: `make bi` installs Superset into {VENV_BI}")
    return subprocess.Popen(
        [str(gunicorn), "--workers", "1", "--threads", "4", "--timeout", "180", "--bind", f"{host}:{port}",
         "--log-level", "warning", "superset.app:create_app()"],
        env=superset_env(), stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise BIError(f"Superset exited with code {proc.returncode} while starting (see its log)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise BIError(f"Superset did not answer {url}/health within {timeout:.0f}s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Client:
    """Superset's REST API as the admin: JWT + CSRF token + session cookie."""

    def __init__(self, url: str, password: str | None = None):
        self.url = url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        token = self._call("POST", "/api/v1/security/login",
                           {"username": ADMIN, "password": password or admin_password(), "provider": "db",
                            "refresh": False})["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.headers["X-CSRFToken"] = self._call("GET", "/api/v1/security/csrf_token/")["result"]
        self.headers["Referer"] = self.url

    def _call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {**getattr(self, "headers", {}), **({"Content-Type": "application/json"} if data else {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=180) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:600]
            raise BIError(f"Superset API {method} {path}: HTTP {exc.code}: {detail}") from exc

    get = lambda self, path: self._call("GET", path)  # noqa: E731
    post = lambda self, path, body: self._call("POST", path, body)  # noqa: E731
    put = lambda self, path, body: self._call("PUT", path, body)  # noqa: E731

    def find(self, resource: str, **match) -> dict | None:
        q = urllib.parse.quote("(page_size:100)")
        for row in self.get(f"/api/v1/{resource}/?q={q}")["result"]:
            if all(_field(row, k) == v for k, v in match.items()):
                return row
        return None


def _field(row: dict, key: str):
    value = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def load_specs() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(DASHBOARDS.glob("*.yml"))]


def provision(client: Client) -> list[dict]:
    """Create or update the database connection, the datasets, the charts and the dashboards of
    bi/dashboards/*.yml. Returns one dict per dashboard: title, url, charts [(name, id)]."""
    uri = warehouse_uri()
    db = client.find("database", database_name=DATABASE_NAME)
    body = {"database_name": DATABASE_NAME, "sqlalchemy_uri": uri, "expose_in_sqllab": True,
            "allow_dml": False, "allow_ctas": False, "allow_cvas": False}
    db_id = client.put(f"/api/v1/database/{db['id']}", body)["id"] if db else \
        client.post("/api/v1/database/", body)["id"]
    out = []
    for spec in load_specs():
        datasets = {}
        for ds in spec["datasets"]:
            found = client.find("dataset", schema=ds["schema"], table_name=ds["table"], **{"database.id": db_id})
            ds_id = found["id"] if found else client.post(
                "/api/v1/dataset/", {"database": db_id, "schema": ds["schema"], "table_name": ds["table"]})["id"]
            datasets[f"{ds['schema']}.{ds['table']}"] = ds_id
        d = spec["dashboard"]
        dash = client.find("dashboard", dashboard_title=d["title"])
        dash_body = {"dashboard_title": d["title"], "slug": d["slug"], "published": True}
        dash_id = client.put(f"/api/v1/dashboard/{dash['id']}", dash_body)["id"] if dash else \
            client.post("/api/v1/dashboard/", dash_body)["id"]
        charts = []
        for c in spec["charts"]:
            ds_id = datasets[c["dataset"]]
            params = {**c["params"], "datasource": f"{ds_id}__table"}
            query = {"filters": [], "extras": {"having": "", "where": ""}, **c["query"]}
            qc = {"datasource": {"id": ds_id, "type": "table"}, "force": True, "queries": [query],
                  "form_data": params, "result_format": "json", "result_type": "full"}
            body = {"slice_name": c["name"], "viz_type": params["viz_type"], "datasource_id": ds_id,
                    "datasource_type": "table", "params": json.dumps(params), "query_context": json.dumps(qc),
                    "dashboards": [dash_id]}
            found = client.find("chart", slice_name=c["name"])
            chart_id = client.put(f"/api/v1/chart/{found['id']}", body)["id"] if found else \
                client.post("/api/v1/chart/", body)["id"]
            charts.append((c["name"], chart_id, c.get("width", 6)))
        client.put(f"/api/v1/dashboard/{dash_id}", {
            **dash_body, "position_json": json.dumps(_layout(d["title"], charts)),
            "json_metadata": json.dumps({"refresh_frequency": 0, "color_scheme": "supersetColors",
                                         "positions": _layout(d["title"], charts)})})
        out.append({"title": d["title"], "id": dash_id, "url": f"{client.url}/superset/dashboard/{d['slug']}/",
                    "charts": [(n, i) for n, i, _ in charts]})
    return out


def _layout(title: str, charts: list[tuple[str, int, int]]) -> dict:
    """Dashboard layout v2: charts in rows of at most 12 columns, in the spec's order."""
    layout = {"DASHBOARD_VERSION_KEY": "v2",
              "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
              "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
              "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": title}}}
    row, used = None, 12
    for name, chart_id, width in charts:
        if used + width > 12:
            row = f"ROW-{len(layout['GRID_ID']['children']) + 1}"
            layout["GRID_ID"]["children"].append(row)
            layout[row] = {"type": "ROW", "id": row, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                           "meta": {"background": "BACKGROUND_TRANSPARENT"}}
            used = 0
        key = f"CHART-{chart_id}"
        layout[row]["children"].append(key)
        layout[key] = {"type": "CHART", "id": key, "children": [], "parents": ["ROOT_ID", "GRID_ID", row],
                       "meta": {"chartId": chart_id, "width": width, "height": 60, "sliceName": name}}
        used += width
    return layout


def chart_rows(client: Client, chart_id: int) -> int:
    """Rows the chart's saved query returns, run by Superset on the warehouse as mwh_analyst."""
    res = client.get(f"/api/v1/chart/{chart_id}/data/?format=json&force=true")
    return sum(int(r.get("rowcount") or len(r.get("data") or [])) for r in res["result"])


# --- headless Chromium over the DevTools pipe (no driver, no extra package) -------------------------------

class _Chrome:
    def __init__(self, binary: str, width: int, height: int):
        self.profile = tempfile.mkdtemp(prefix="mwh-bi-chromium-")
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()

        def fds():  # Chromium reads commands on fd 3 and writes replies on fd 4
            high_r, high_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # dup2 makes them inheritable, whatever numbers the pipes got
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(res_w)
        self.buf, self.next_id, self.session = b"", 0, None

    def send(self, method: str, params: dict | None = None, timeout: float = 60, session: bool = True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise BIError(f"chromium {method}: {reply['error'].get('message')}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.res_r], [], [], left)[0]:
                raise BIError(f"chromium did not answer {method} within {timeout:.0f}s")
            chunk = os.read(self.res_r, 1 << 20)
            if not chunk:
                raise BIError("chromium exited")
            self.buf += chunk

    def evaluate(self, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        if "exceptionDetails" in res:
            raise BIError(f"chromium: {res['exceptionDetails'].get('text')}: {expression[:80]}")
        return res.get("result", {}).get("value")

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self.cmd_w)
        os.close(self.res_r)
        shutil.rmtree(self.profile, ignore_errors=True)


# Charts drawn: an ECharts canvas/svg, a big number, a table's body rows; and any error shown instead.
_RENDERED_JS = """(() => {
  const holders = [...document.querySelectorAll('.dashboard-component-chart-holder')];
  const drawn = holders.filter(h => h.querySelector('canvas, svg, .header-line, table tbody tr'));
  const errors = [...document.querySelectorAll('.dashboard-component-chart-holder .alert, '
      + '.dashboard-component-chart-holder [role="alert"]')].map(e => e.innerText.slice(0, 200));
  const loading = document.querySelectorAll('.dashboard-component-chart-holder .loading').length;
  return {holders: holders.length, drawn: drawn.length, loading, errors};
})()"""


def screenshot(url: str, dashboard_url: str, out: Path, expect_charts: int, password: str | None = None,
               timeout: float = 180, chromium: str | None = None) -> dict:
    """Log in as the admin in headless Chromium, open the dashboard, wait until every chart is drawn,
    save a PNG. Returns what the page showed ({holders, drawn, loading, errors})."""
    import base64

    binary = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise BIError("chromium not found (`make chromium` installs Debian's)")
    width, height = 1600, 1400
    chrome = _Chrome(binary, width, height)
    try:
        target = chrome.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        chrome.session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     session=False)["sessionId"]
        chrome.send("Page.enable")
        chrome.send("Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        # Log in through Superset's own login endpoint from the page, so the browser holds the session.
        chrome.send("Page.navigate", {"url": f"{url}/login/"})
        _wait(chrome, "document.readyState === 'complete'", 60, "the login page")
        ok = chrome.evaluate(
            "(async () => { const html = await (await fetch('/login/')).text();"
            " const m = html.match(/name=\"csrf_token\"[^>]*value=\"([^\"]+)\"/)"
            "  || html.match(/\"csrf_token\"\\s*:\\s*\"([^\"]+)\"/)"
            "  || html.match(/id=\"csrf_token\"[^>]*value=\"([^\"]+)\"/);"
            " const body = new URLSearchParams({username: USER, password: PASSWORD, csrf_token: m ? m[1] : ''});"
            " await fetch('/login/', {method: 'POST', body, redirect: 'follow'});"
            " const me = await fetch('/api/v1/me/'); return me.status; })()"
            .replace("USER", json.dumps(ADMIN)).replace("PASSWORD", json.dumps(password or admin_password())))
        if ok != 200:
            raise BIError(f"chromium could not log in to Superset as {ADMIN} (/api/v1/me/ answered {ok})")
        chrome.send("Page.navigate", {"url": dashboard_url})
        deadline = time.monotonic() + timeout
        state: dict = {}
        while time.monotonic() < deadline:
            state = chrome.evaluate(_RENDERED_JS) or {}
            if state.get("errors") or (state.get("drawn", 0) >= expect_charts and not state.get("loading")):
                break
            time.sleep(1)
        time.sleep(2)  # the charts' entry animations
        png = chrome.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(png))
        return state
    finally:
        chrome.close()


def _wait(chrome: _Chrome, condition: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if chrome.evaluate(condition):
            return
        time.sleep(0.5)
    raise BIError(f"chromium: {what} did not load within {timeout:.0f}s")


# --- command line -------------------------------------------------------------------------------------------

def cmd_up(args) -> int:
    url = f"http://{args.host}:{args.port}"
    t0 = time.monotonic()

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # a service manager's stop: stop Superset too
    signal.signal(signal.SIGINT, interrupt)
    if init_metadata():
        print(f"superset: metadata initialized in {bi_home()} ({time.monotonic() - t0:.0f}s)", flush=True)
    log = open(bi_home() / "superset.log", "ab")  # noqa: SIM115 (lives as long as the server)
    proc = start_server(args.port, args.host, log)
    try:
        wait_healthy(url, proc)
        dashboards = provision(Client(url))
        for d in dashboards:
            print(f"dashboard: {d['url']} ({len(d['charts'])} charts)", flush=True)
        print(f"superset: {url} (user {ADMIN}, password in MWH_BI_ADMIN_PASSWORD or {bi_home()}/admin_password);"
              f" reads {DATABASE_NAME.split()[0]} as mwh_analyst; Ctrl-C stops it", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(proc)
        log.close()


def cmd_provision(args) -> int:
    for d in provision(Client(args.url)):
        print(f"dashboard: {d['url']} ({len(d['charts'])} charts)")
    return 0


def cmd_check(args) -> int:
    client = Client(args.url)
    bad = 0
    for spec in load_specs():
        for c in spec["charts"]:
            found = client.find("chart", slice_name=c["name"])
            n = chart_rows(client, found["id"]) if found else 0
            bad += n == 0
            print(f"{c['name']}: {n} rows" if found else f"{c['name']}: not provisioned")
    return 1 if bad else 0


def cmd_screenshot(args) -> int:
    charts = sum(len(s["charts"]) for s in load_specs()[:1])
    dash = load_specs()[0]["dashboard"]
    state = screenshot(args.url, f"{args.url}/superset/dashboard/{dash['slug']}/", Path(args.out), charts)
    print(f"{args.out}: {state.get('drawn')}/{charts} charts drawn" + (f", errors: {state['errors']}"
                                                                         if state.get("errors") else ""))
    return 0 if state.get("drawn", 0) >= charts and not state.get("errors") else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="superset_bi", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="init once, serve Superset, provision the dashboards")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=int(os.environ.get("MWH_BI_PORT", "8088")),
                    help="port (default MWH_BI_PORT or 8088)")
    up.set_defaults(func=cmd_up)
    for name, func, helptext in (("provision", cmd_provision, "create or update the dashboards"),
                                 ("check", cmd_check, "rows returned by each chart's query"),
                                 ("screenshot", cmd_screenshot, "headless Chromium PNG of the dashboard")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--url", default="http://127.0.0.1:8088", help="Superset's URL")
        if name == "screenshot":
            s.add_argument("--out", default=str(REPO / "artifacts" / "bi" / "market_overview.png"),
                           help="PNG path")
        s.set_defaults(func=func)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except BIError as exc:
        print(f"superset_bi: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
