"""Running dbt from Python (dbtRunner), against the same profile the loaders use, and `mwh build`.

`build()` is what `mwh build [dbt args...]` runs. It keeps builds from corrupting each other:

- The seeds' checksum (which seed files the warehouse's `reference` tables hold) is recorded only when
  this run loaded every seed, so a selected build that leaves the seeds out never makes a later plain
  build skip them. A plain build reloads the seeds when their files changed or a seed table is missing.
- A selected build (`--select ...`) also builds the ancestors of its selection that do not exist in
  the warehouse yet (seeds included), and runs only the tests whose parents are built or exist
  (`--indirect-selection buildable`, unless you pass your own).
- A plain build (no selection) leaves out the models and snapshots whose inputs did not change since the
  last successful build (DuckDB, PostgreSQL and TimescaleDB; market_warehouse/build_state.py decides,
  `build()` below applies it).
- After the build it reports the ML records that could not be matched to a bar
  (marts.fct_ml_unmatched_records).

What it costs besides dbt's run (an incremental daily build is a few tens of seconds): no pandas, pyarrow or
loader import (a plain DuckDB/psycopg connection, `Warehouse`: the loaders' sinks are opened only to create a
missing raw table), one connection before dbt and one after, dbt's saved parse without writing manifest.json
(the build writes it). `mwh -v build` logs each stage's seconds.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from market_warehouse.config import ConfigError, Target, load_target, profiles_dir, project_dir

log = logging.getLogger(__name__)

# dbt flags that take a selection (their values follow until the next flag).
SELECT_FLAGS = ("-s", "--select", "-m", "--models", "--model")
BUILT_TYPES = ("model", "seed", "snapshot")
# The flags of a build that say what it selects (passed on to `dbt ls`; the others, such as
# --full-refresh or --threads, are not ls options).
LS_FLAGS = (*SELECT_FLAGS, "--exclude", "--selector", "--resource-type", "--resource-types",
            "--exclude-resource-type", "--exclude-resource-types", "--vars")


def dbt_env(target: Target) -> None:
    """Settings dbt must see: no tracking, and the absolute DuckDB path the loaders wrote to."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    if target.type == "duckdb" and target.path:
        os.environ["MWH_DUCKDB_PATH"] = target.path


def run_dbt(args: Sequence[str], target: str | Target | None = None, quiet: bool = False,
            manifest=None, log_level: str | None = None):
    """Run one dbt command (e.g. ["build", "--select", "staging"]); returns dbt's result object.
    Raises nothing for failed models/tests: check `.success`. `manifest` (from a `parse`) skips parsing.
    ConfigError when the project folder has no dbt_project.yml (a wrong MWH_PROJECT_DIR)."""
    if not isinstance(target, Target):
        target = load_target(target)
    dbt_env(target)
    pdir = project_dir()
    if not (pdir / "dbt_project.yml").is_file():
        raise ConfigError(f"no dbt_project.yml in {pdir}: set MWH_PROJECT_DIR to the project folder (the "
                          "repository root), or unset it")
    argv = [*args, "--project-dir", str(pdir), "--profiles-dir", str(profiles_dir()),
            "--target", target.name]
    if quiet:
        argv = ["--quiet", *argv]
    if log_level:
        argv = ["--log-level", log_level, *argv]
    cwd = os.getcwd()
    os.chdir(pdir)  # dbt resolves target/ and logs/ against the working directory
    try:
        with full_collections_paused():
            # deferred: dbt takes a second to import; loads and reads never need it
            from dbt.cli.main import dbtRunner
            return dbtRunner(manifest=manifest).invoke(argv)
    finally:
        os.chdir(cwd)


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """Python's cyclic garbage collector without its full (oldest-generation) passes while dbt runs; the young
    generations still collect the short-lived cycles. A full pass walks every object dbt holds (the parsed
    project, each node's compiled context) with all threads stopped, and CPython's default thresholds make
    several per invocation: 7 of them took 0.64-0.73 s of a 9.0 s incremental `mwh build` on DuckDB at 5M
    daily bars (the collector's own callbacks, docs/performance.md). What reaches the old generation and then
    becomes garbage waits for the first full pass after dbt returns (peak RSS of the full 5M build: 3.58-3.61 GB
    against 3.57 GB before). The thresholds are restored on the way out."""
    young, middle, oldest = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, oldest)


def seeds_checksum() -> str:
    """One checksum over the seed files (contents and names)."""

    digest = hashlib.sha256()
    for path in sorted((project_dir() / "seeds").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class BuildPlan:
    """What `build()` decided before running dbt."""

    args: list[str]
    seeds_excluded: bool
    added_parents: list[str] = field(default_factory=list)


def _selection_flag(extra: Sequence[str]) -> int | None:
    """Index of the first selection flag (--select, -s, ...) in dbt arguments, if any."""
    return next((i for i, a in enumerate(extra) if a in SELECT_FLAGS), None)


def _ls_args(extra: Sequence[str]) -> list[str]:
    """The selection flags of `extra` with their values."""
    out: list[str] = []
    keep = False
    for arg in extra:
        if arg.startswith("-"):
            keep = arg.split("=", 1)[0] in LS_FLAGS
        if keep:
            out.append(arg)
    return out


class Warehouse:
    """A plain connection for the few queries `mwh build` makes around dbt: the loaders' sinks import pandas
    and pyarrow (about a second of start-up), which none of these needs. DuckDB and PostgreSQL; other
    targets (Spark) go through their sink."""

    def __init__(self, target: Target):
        self.target = target
        self._sink = None
        if target.type == "duckdb":
            import duckdb

            self._con = duckdb.connect(target.path)
        elif target.type == "postgres":
            import psycopg

            self._con = psycopg.connect(target.conninfo(), autocommit=True)
        else:
            from market_warehouse.loaders.sinks import open_sink

            self._sink = open_sink(target, tables=())

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        (self._sink or self._con).close()

    def query(self, sql: str) -> list[tuple]:
        if self._sink is not None:
            return self._sink.query(sql)
        cursor = self._con.execute(sql)
        return cursor.fetchall() if cursor.description is not None else []

    def relations(self) -> set[tuple[str, str]]:
        """(schema, name) of every table and view in the warehouse, lower case."""
        rows = self.query("select table_schema, table_name from information_schema.tables")
        return {(s.lower(), n.lower()) for s, n in rows}

    def raw_ready(self, relations: set[tuple[str, str]]) -> bool:
        """The raw market tables exist (and, on the timescale target, the extension): nothing to create."""
        from market_warehouse.loaders.schema import MARKET_TABLES, RAW_SCHEMA

        if any((RAW_SCHEMA, t.name.lower()) not in relations for t in MARKET_TABLES):
            return False
        return self.target.name != "timescale" or bool(
            self.query("select 1 from pg_extension where extname = 'timescaledb'"))

    def refresh_statistics(self) -> None:
        """PostgreSQL: analyze the raw market tables whose statistics are stale, so a build right after a
        load plans on fresh estimates (the sinks' refresh_statistics; nothing to do on DuckDB)."""
        from market_warehouse.loaders.schema import MARKET_TABLES

        if self.target.type == "postgres":
            from market_warehouse.loaders.sinks.postgres_sink import analyze_stale

            analyze_stale(self._con, [t.qualified for t in MARKET_TABLES])
        elif self._sink is not None:
            self._sink.refresh_statistics(MARKET_TABLES)

    def stored_seeds_checksum(self) -> str | None:
        from market_warehouse.loaders.schema import stored_seeds_checksum

        return stored_seeds_checksum(self.query)



def _store_seeds_checksum(target: Target, checksum: str) -> None:
    """After a build that loaded every seed (the first one, or changed seed files): through the sink, whose
    transaction and privilege handling this rare write keeps."""
    from market_warehouse.loaders.sinks import open_sink

    with open_sink(target, tables=()) as sink:
        sink.store_seeds_checksum(checksum)


def _existing_relations(target: Target) -> set[tuple[str, str]]:
    """(schema, name) of every table and view in the warehouse, lower case."""
    with Warehouse(target) as wh:
        return wh.relations()


def _relation_key(node) -> tuple[str, str]:
    return (str(node.schema).lower(), str(node.alias or node.name).lower())


def _ancestors(manifest, unique_ids: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(unique_ids)
    while todo:
        for parent in manifest.parent_map.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def plan_build(extra: Sequence[str], target: Target, manifest, stored_checksum: str | None,
               checksum: str, existing: set[tuple[str, str]] | None = None) -> BuildPlan:
    """The dbt build arguments for `mwh build <extra>` on this warehouse (see the module docstring).
    `existing`: the warehouse's relations (`Warehouse.relations`), when the caller has them."""
    args = list(extra)
    if existing is None:
        existing = _existing_relations(target)
    seeds = {uid: n for uid, n in manifest.nodes.items() if n.resource_type == "seed"}
    seeds_missing = any(_relation_key(n) not in existing for n in seeds.values())
    unchanged = ("--full-refresh" not in extra and stored_checksum == checksum and not seeds_missing)
    first = _selection_flag(extra)
    added: list[str] = []
    if first is not None:
        res = run_dbt(["ls", *_ls_args(extra), "--output", "json", "--output-keys", "unique_id"], target,
                      manifest=manifest, log_level="none")
        if not res.success:
            raise RuntimeError(f"dbt ls {' '.join(extra)}: {res.exception or 'failed'}")

        selected = {json.loads(line)["unique_id"] for line in res.result}
        for uid in sorted(_ancestors(manifest, selected) - selected):
            node = manifest.nodes.get(uid)
            if (node is None or node.resource_type not in BUILT_TYPES
                    or node.config.materialized == "ephemeral"):
                continue
            if _relation_key(node) not in existing:
                added.append(node.name)
                if node.resource_type == "seed":
                    unchanged = False
        if added:
            args[first + 1:first + 1] = added
    if (first is not None or "--selector" in extra) and not any(
            a.startswith("--indirect-selection") for a in extra):
        args += ["--indirect-selection", "buildable"]
    if unchanged:
        args += ["--exclude-resource-type", "seed"]
    return BuildPlan(args=["build", *args], seeds_excluded=unchanged, added_parents=added)


def _all_seeds_loaded(manifest, result) -> bool:
    seeds = {uid for uid, n in manifest.nodes.items() if n.resource_type == "seed"}
    ok = {r.node.unique_id for r in (result or []) if r.node.resource_type == "seed"
          and str(r.status) == "success"}
    return seeds <= ok


def report_unmatched(wh: Warehouse) -> int:
    """Print how many ML records the build could not match to a bar; returns the count."""

    try:
        rows = wh.query("select record_type, reason, count(*) from marts.fct_ml_unmatched_records "
                        "group by record_type, reason order by record_type, reason")
    except Exception:  # noqa: BLE001 - the mart is not built (market-only selection)
        return 0
    total = sum(r[2] for r in rows)
    if total:
        print(f"warning: {total:,} ML record(s) not matched to a bar (marts.fct_ml_unmatched_records):")
        for kind, reason, n in rows:
            print(f"  {n:>8,} {kind}: {reason}")
    return total


@full_collections_paused()  # also over the work between dbt's parse and its build, and the report after it
def build(target: str | Target | None, extra: Sequence[str], quiet: bool = False,
          after: Callable[[Warehouse, object], None] | None = None) -> int:
    """`mwh build [dbt args...]`: exit code 0 when dbt succeeded, else 1. `after(warehouse, dbt result)` runs
    on the same connection as the unmatched-records report (the result is None when dbt did not run)."""

    from market_warehouse import build_state

    t0 = time.monotonic()
    if not isinstance(target, Target):
        target = load_target(target)
    checksum = seeds_checksum()
    # The saved parse (target/partial_parse.msgpack) is reused; manifest.json is written by the build.
    parsed = run_dbt(["parse", "--no-write-json"], target, quiet=True)
    log.info("mwh build: dbt parse done at %.2fs", time.monotonic() - t0)
    manifest = parsed.result if parsed.success else None
    skip = build_state.SkipPlan()
    # One connection from the check to the report, open while dbt runs: on DuckDB, dbt's connection joins
    # the database this one opened (DuckDB shares one instance per file within a process) instead of opening
    # the file again, 0.11-0.13 s at 5M daily bars.
    with Warehouse(target) as wh:
        existing = wh.relations()
        ready = wh.raw_ready(existing)
        if ready:
            wh.refresh_statistics()
            if manifest is not None:  # the fingerprints, and the last successful build's (then removed)
                skip = build_state.observe(wh, manifest, target, extra, existing)
        stored = wh.stored_seeds_checksum()
        if not ready:  # a new warehouse: the loaders' sink creates the raw tables (and TimescaleDB's extension)
            from market_warehouse.loaders.schema import MARKET_TABLES
            from market_warehouse.loaders.sinks import open_sink

            with open_sink(target, tables=MARKET_TABLES) as sink:
                sink.refresh_statistics(MARKET_TABLES)
            existing = wh.relations()
            if manifest is not None:
                skip = build_state.observe(wh, manifest, target, extra, existing)
        log.info("mwh build: warehouse checked at %.2fs", time.monotonic() - t0)
        res = plan = None
        if manifest is None:
            print(f"mwh build: dbt parse failed: {parsed.exception or 'see logs/dbt.log'}")
        else:
            try:
                plan = plan_build(extra, target, manifest, stored, checksum, existing=existing)
            except RuntimeError as exc:
                print(f"mwh build: {exc}")
        if plan is not None:
            if plan.added_parents:
                print(f"mwh build: also building {len(plan.added_parents)} missing parent(s) of the selection: "
                      + ", ".join(plan.added_parents))
            # Models whose inputs did not change since the last successful build are left out (build_state.py).
            build_state.decide(skip, manifest, extra, plan.seeds_excluded, existing)
            if skip.reason:
                log.info("mwh build: building %s", skip.reason)
            res = run_dbt(plan.args + build_state.skip_args(manifest, skip), target, quiet=quiet,
                          manifest=manifest)
            log.info("mwh build: dbt build done at %.2fs", time.monotonic() - t0)
            if not plan.seeds_excluded and _all_seeds_loaded(manifest, res.result):
                _store_seeds_checksum(target, checksum)
        if res is not None:
            report_unmatched(wh)
            if res.success and skip.project and build_state.build_complete(manifest, skip, res.result):
                build_state.write_state(wh, skip.project, skip.sources)
        if after is not None:
            after(wh, res)
    log.info("mwh build: reported at %.2fs", time.monotonic() - t0)
    return 0 if res is not None and res.success else 1


def exit_process(code: int) -> None:
    """End the `mwh build` process now: dbt's DuckDB connection closed (its checkpoint: the build's writes in
    the database file), the atexit handlers run (logging flushed), stdout and stderr flushed, then
    os._exit. Skipped: the interpreter's teardown of dbt's objects (the parsed project, the adapters), about
    1.6 s at 5M (load 8). Only for the command line (`mwh build`), never when `main()` is called in a process
    that goes on (tests)."""
    import atexit
    import sys

    duckdb_manager = sys.modules.get("dbt.adapters.duckdb.connections")
    if duckdb_manager is not None:
        manager = getattr(duckdb_manager, "DuckDBConnectionManager", None)
        if not (hasattr(manager, "_LOCK") and hasattr(manager, "_ENV")):
            return  # a dbt-duckdb whose internals differ (not the pinned 1.11): the interpreter's own exit
        with manager._LOCK:
            env, manager._ENV = manager._ENV, None
        if env is not None:
            env.close()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
