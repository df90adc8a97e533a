"""The loaders as Dagster assets: one asset per source type of the sources file (docs/operations.md).

Each asset loads the entries of its type exactly as `mwh run` does (market_warehouse.jobs: drop files
already in the ledger unchanged are skipped, yfinance is incremental from the last loaded bar, every
file gets its audit row in raw.loader_runs), under the same run lock as `mwh run`, so the two never
write at once. A file or symbol that fails does not stop the others: the asset is still materialized
(the rows that loaded feed the build) and its `sources_loaded` check fails, naming each error. A
fault of the pipeline itself (no database, a wrong sources file, the lock held) fails the step, which
is retried.
"""


import contextlib
import os
from dataclasses import asdict
from pathlib import Path

import dagster as dg
from pydantic import Field

from market_warehouse.config import ConfigError, load_target, project_dir
from market_warehouse.jobs import (
    JobConfigError,
    JobLocked,
    Log,
    SourceResult,
    _ledger,
    _load_source,
    job_lock,
    load_config,
)
from market_warehouse.loaders.schema import JOB_TABLES
from market_warehouse.runs import new_run_id

# source type of the sources file -> asset name (under the `loaders` prefix)
LOADER_ASSETS = {"files": "file_drops", "yfinance": "yfinance", "ml": "ml_records"}
LOADER_KEYS = {kind: dg.AssetKey(["loaders", name]) for kind, name in LOADER_ASSETS.items()}


def _retries() -> int:
    raw = os.environ.get("MWH_DAGSTER_RETRIES", "3")
    if not raw.isdigit():
        raise ConfigError(f"MWH_DAGSTER_RETRIES={raw!r}: not a whole number")
    return int(raw)


# A failed loader or dbt step is retried (60 s, then exponential); MWH_DAGSTER_RETRIES=0 turns it off.
RETRY = dg.RetryPolicy(max_retries=_retries(), delay=60, backoff=dg.Backoff.EXPONENTIAL)


def default_sources_file() -> str:
    """MWH_SOURCES, else sources.yml in the project directory."""
    return os.environ.get("MWH_SOURCES") or str(project_dir() / "sources.yml")


def run_lock_enabled() -> bool:
    """MWH_DAGSTER_RUN_LOCK=0 turns the shared `mwh run` lock off (on by default)."""
    return os.environ.get("MWH_DAGSTER_RUN_LOCK", "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def warehouse_lock(target, what: str):
    """`mwh run`'s lock (a lock file next to a DuckDB file, an advisory lock on PostgreSQL); a held
    lock fails the step with one line (the step's retry policy tries again later)."""
    if not run_lock_enabled():
        yield
        return
    try:
        with job_lock(target):
            yield
    except JobLocked as exc:
        raise dg.Failure(description=f"{what}: {exc}") from None


class LoadConfig(dg.Config):
    sources: str = Field(default="", description="the sources file (default: MWH_SOURCES, else sources.yml)")
    names: list[str] = Field(default_factory=list,
                             description="only these entries of the file (default: every entry of this type)")


class _DagsterLog(Log):
    """jobs.Log's events to the step's log instead of stdout."""

    def __init__(self, context):
        super().__init__("text")
        self.context = context

    def __call__(self, event: str, message: str, **fields) -> None:
        (self.context.log.warning if "error" in event else self.context.log.info)(message)


def load_sources(context, kind: str, config: LoadConfig) -> dg.MaterializeResult:
    """Load every entry of type `kind` (or the named ones); one materialization with the counts."""
    path = config.sources or default_sources_file()
    try:
        job = load_config(path)
        target = load_target()
    except (JobConfigError, ConfigError) as exc:
        raise dg.Failure(description=str(exc)) from None
    specs = [s for s in job.sources if s.type == kind]
    if config.names:
        missing = sorted(set(config.names) - {s.name for s in specs})
        if missing:
            raise dg.Failure(description=f"{path}: no {kind} source named {', '.join(missing)}")
        specs = [s for s in specs if s.name in config.names]
    run_id = new_run_id()
    log = _DagsterLog(context)
    results: list[SourceResult] = []
    if specs:
        from market_warehouse.ml.db import open_ml_sink

        with warehouse_lock(target, f"loaders/{LOADER_ASSETS[kind]}"), open_ml_sink(target) as sink:
            sink.ensure_tables(JOB_TABLES)
            ledger = _ledger(sink)
            for spec in specs:
                try:
                    results.append(_load_source(sink, spec, run_id, ledger, log))
                except Exception as exc:  # noqa: BLE001 - a source that cannot run fails alone (as in mwh run)
                    log("source_error", f"{spec.name}: FAILED {exc}")
                    results.append(SourceResult(spec.name, spec.type, status="failed",
                                                errors=[f"{spec.name}: {exc}"]))
    else:
        context.log.info(f"{path}: no {kind} source")
    errors = [e for r in results for e in r.errors]
    rows = sum(r.rows_new for r in results)
    check = dg.AssetCheckResult(
        check_name="sources_loaded", passed=not errors, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"failed_sources": [r.name for r in results if r.status != "ok"],
                  "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in errors) or "none")})
    return dg.MaterializeResult(
        metadata={
            "sources_file": str(Path(path).resolve()),
            "run_id": run_id,
            "sources": len(results),
            "rows_new": rows,
            "files_loaded": sum(r.files_loaded for r in results),
            "files_unchanged": sum(r.files_skipped for r in results),
            "files_failed": sum(r.files_failed for r in results),
            "per_source": dg.MetadataValue.json([asdict(r) for r in results]),
        },
        check_results=[check])


def _loader_asset(kind: str, description: str) -> dg.AssetsDefinition:
    key = LOADER_KEYS[kind]

    @dg.asset(key=key, group_name="loaders", kinds={"python"}, description=description, retry_policy=RETRY,
              check_specs=[dg.AssetCheckSpec("sources_loaded", asset=key,
                                             description="every file / symbol of the run loaded")])
    def _load(context: dg.AssetExecutionContext, config: LoadConfig) -> dg.MaterializeResult:
        return load_sources(context, kind, config)

    return _load


file_drops = _loader_asset(
    "files", "Vendor files dropped in folders (sources file entries of type `files`): new or changed "
    "files only, loaded into raw.bars / raw.corporate_actions (quarantine for rows that fail validation).")
yfinance = _loader_asset(
    "yfinance", "Yahoo Finance bars (entries of type `yfinance`), incremental from the last loaded bar "
    "(the only network use).")
ml_records = _loader_asset(
    "ml", "ML records dropped by training and serving code (entries of type `ml`): predictions, signals, "
    "agent decisions and episodes, training runs, registered models.")

LOADER_ASSETS_DEFS = [file_drops, yfinance, ml_records]
