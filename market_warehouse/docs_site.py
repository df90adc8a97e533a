"""`mwh docs`: the dbt docs site (the data catalog), built into its own folder and served over http.

- The site is generated with `dbt docs generate --static --target-path SITE`, so it lives in its own
  folder (default `target/docs_site/`, or `--site-dir`/MWH_DOCS_DIR): a later `mwh build` rewrites
  `target/manifest.json` but never the site a browser is looking at.
- `SITE/index.html` needs http (it fetches manifest.json and catalog.json; opened from a file it
  stays blank in Chromium). `SITE/static_index.html` (from `--static`) carries both inline and opens
  from a file or an email attachment.
- `mwh docs --serve` serves SITE on http://127.0.0.1:8080/ with Python's http.server (no `dbt` on
  PATH needed; `dbt docs serve` would serve target/, which builds rewrite).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

from market_warehouse import errors
from market_warehouse.config import Target, load_target, target_dir
from market_warehouse.dbt import run_dbt

SITE_FILES = ("index.html", "static_index.html", "manifest.json", "catalog.json")


def site_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the site is written: --site-dir, MWH_DOCS_DIR, or docs_site/ in dbt's target folder."""
    if explicit:
        return Path(explicit).resolve()
    env = os.environ.get("MWH_DOCS_DIR")
    if env:
        return Path(env).resolve()
    return target_dir() / "docs_site"


def generate(target: Target | str | None, site: Path, extra: list[str] | None = None) -> bool:
    """dbt docs generate (static too) into `site`; True when it worked."""
    if not isinstance(target, Target):
        target = load_target(target)
    errors.check(target)  # one line, not dbt's page, when the warehouse cannot be reached
    site.mkdir(parents=True, exist_ok=True)
    res = run_dbt(["docs", "generate", "--static", "--target-path", str(site), *(extra or [])], target)
    return bool(res.success)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def serve(site: Path, port: int = 8080, host: str = "127.0.0.1", quiet: bool = False):
    """An http server for `site` running in a daemon thread; returns it (`.server_address`, `.shutdown()`)."""
    if not (site / "index.html").exists():
        raise FileNotFoundError(f"{site}/index.html does not exist: run `mwh docs` first")
    handler = functools.partial(_QuietHandler if quiet else http.server.SimpleHTTPRequestHandler,
                                directory=str(site))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="mwh-docs").start()
    return server


def cmd_docs(args, extra: list[str]) -> int:
    site = site_dir(args.site_dir)
    if not args.no_build:
        if not generate(args.target, site, extra):
            print("mwh: dbt docs generate failed (see the messages above and logs/dbt.log)")
            return 1
        print(f"docs site written to {site}/ (its own folder: builds do not touch it)")
    if not args.serve:
        print(f"  serve it:          mwh docs --serve            (http://127.0.0.1:{args.port}/)")
        print(f"  or open the file:  {site / 'static_index.html'}   (one self-contained page; "
              f"index.html needs http)")
        return 0
    try:
        server = serve(site, args.port, quiet=False)
    except FileNotFoundError as exc:
        print(f"mwh: {exc}")
        return 1
    except OSError as exc:
        print(f"mwh: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}): choose another --port")
        return 1
    print(f"serving {site} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


def register(sub) -> None:
    """`mwh docs [--serve] [--port N] [--site-dir DIR] [--no-build] [dbt docs generate arguments...]`."""
    d = sub.add_parser(
        "docs", help="build the dbt docs site (the catalog) into its own folder; --serve serves it",
        description="Runs `dbt docs generate --static` into the site folder (default target/docs_site/, "
                    "or MWH_DOCS_DIR), so builds never rewrite a site being browsed. Other arguments "
                    "pass through to `dbt docs generate` (e.g. --select, --no-compile).",
        epilog="index.html needs http (mwh docs --serve); static_index.html opens from a file.")
    d.add_argument("--serve", action="store_true",
                   help="after building, serve the site on http://127.0.0.1:PORT/ until Ctrl-C")
    d.add_argument("--port", type=int, default=8080, help="port for --serve (default 8080)")
    d.add_argument("--site-dir", help="folder of the site (default: MWH_DOCS_DIR or target/docs_site)")
    d.add_argument("--no-build", action="store_true", help="with --serve: serve the site already built")
    d.set_defaults(func=cmd_docs, passthrough=True)
