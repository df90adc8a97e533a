"""The dbt project as Dagster assets (dagster-dbt), from the project's manifest.

- Models, seeds and snapshots are assets (key: the node's name, group: the dbt group or folder); dbt
  tests are asset checks (warn-severity tests are non-blocking, as in `mwh build`).
- The raw tables the staging models read (dbt sources) are not assets of their own: a model that reads
  `source('market', ...)` depends on the market loaders (`loaders/file_drops`, `loaders/yfinance`), one
  that reads `source('ml', ...)` on `loaders/ml_records` (the retrain queue excepted: the queue API
  writes it), so the lineage runs from each loader to the marts. Any other source keeps a `raw/<table>`
  key, an external asset.
- The manifest: MWH_DAGSTER_MANIFEST (a manifest.json built at deploy time), else `dbt parse` into
  `<DBT_TARGET_PATH or target>/dagster/` when the definitions load (about 10 s; always current).
- A step runs `dbt build` on the selected assets, through DbtCliResource (its own target folder per
  run), under `mwh run`'s lock (MWH_DAGSTER_RUN_LOCK=0 turns it off).
"""


import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from market_warehouse.config import ConfigError, load_target, profiles_dir, project_dir, target_dir
from market_warehouse.dbt import dbt_env, run_dbt
from orchestration.loaders import LOADER_KEYS, RETRY, warehouse_lock

# dbt source name -> the loader assets that write its tables (tables listed in NOT_LOADED excepted)
SOURCE_LOADERS = {"market": (LOADER_KEYS["files"], LOADER_KEYS["yfinance"]), "ml": (LOADER_KEYS["ml"],)}
NOT_LOADED = {("ml", "ml_retrain_queue")}


class MwhDbtTranslator(DagsterDbtTranslator):
    """dagster-dbt's defaults, plus: sources keyed raw/<table>, and models' source deps replaced by the
    loader assets that write those tables."""

    def __init__(self):
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True))
        self._fed_by: dict[dg.AssetKey, tuple[dg.AssetKey, ...]] = {}
        self._mwh_specs: dict[tuple[int, str], dg.AssetSpec] = {}

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        memo = (id(manifest), unique_id)
        if memo in self._mwh_specs:
            return self._mwh_specs[memo]
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            key = dg.AssetKey(["raw", props["name"]])
            loaders = SOURCE_LOADERS.get(props["source_name"])
            if loaders and (props["source_name"], props["name"]) not in NOT_LOADED:
                self._fed_by[key] = loaders
            spec = spec.replace_attributes(key=key)
        elif any(d.asset_key in self._fed_by for d in spec.deps):
            deps: dict[dg.AssetKey, dg.AssetDep] = {}
            for dep in spec.deps:
                for key in self._fed_by.get(dep.asset_key, (dep.asset_key,)):
                    deps.setdefault(key, dg.AssetDep(key) if key != dep.asset_key else dep)
            spec = spec.replace_attributes(deps=list(deps.values()))
        self._mwh_specs[memo] = spec
        return spec


def dbt_executable() -> str:
    """The venv's dbt next to this Python (PATH need not include the venv), else dbt on PATH."""
    here = Path(sys.executable).parent / "dbt"
    return str(here) if here.exists() else (shutil.which("dbt") or "dbt")


def dagster_target_path() -> Path:
    return target_dir().resolve() / "dagster"


def prepare_manifest() -> Path:
    """The manifest the assets are built from: MWH_DAGSTER_MANIFEST, else a fresh `dbt parse`."""
    given = os.environ.get("MWH_DAGSTER_MANIFEST")
    if given:
        if not Path(given).is_file():
            raise ConfigError(f"MWH_DAGSTER_MANIFEST={given}: no such file (build it with `dbt parse` "
                              f"or unset it to parse when the definitions load)")
        return Path(given).resolve()
    out = dagster_target_path()
    res = run_dbt(["parse", "--target-path", str(out)], quiet=True)
    if not res.success or not (out / "manifest.json").is_file():
        raise ConfigError(f"dbt parse failed ({res.exception or 'see the dbt log'}); the dagster "
                          f"definitions need the project's manifest")
    return out / "manifest.json"


def dbt_project(manifest: Path) -> DbtProject:
    return DbtProject(project_dir=project_dir(), profiles_dir=profiles_dir(), target_path=manifest.parent)


def dbt_resource(project: DbtProject) -> DbtCliResource:
    return DbtCliResource(project_dir=project, dbt_executable=dbt_executable())


def run_target_path(context: dg.AssetExecutionContext, manifest: Path) -> Path:
    """The run's own dbt target folder (as DbtCliResource makes one), seeded with the parse's
    partial_parse.msgpack so that dbt does not parse the whole project again (it re-parses by itself
    whatever changed since, the profile included)."""
    path = dagster_target_path().parent / f"dagster-run-{context.run.run_id[:8]}-{uuid.uuid4().hex[:7]}"
    path.mkdir(parents=True, exist_ok=True)
    partial = manifest.parent / "partial_parse.msgpack"
    if partial.is_file():
        shutil.copyfile(partial, path / partial.name)
    return path


@contextmanager
def indirect_selection_default(mode: str) -> Iterator[None]:
    """DBT_INDIRECT_SELECTION=`mode` (unless set) while DbtCliResource starts its dbt process, which
    copies the environment then; restored after, so this process's own dbt runs never see it. As
    `mwh build`: a subset runs the tests whose parents are all selected, not a test of an unselected
    model (dagster-dbt overrides it with `empty` when it selects the tests one by one)."""
    before = os.environ.get("DBT_INDIRECT_SELECTION")
    os.environ.setdefault("DBT_INDIRECT_SELECTION", mode)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DBT_INDIRECT_SELECTION", None)


def build_dbt_assets(manifest: Path, project: DbtProject) -> dg.AssetsDefinition:
    @dbt_assets(manifest=manifest, project=project, dagster_dbt_translator=MwhDbtTranslator(),
                name="market_warehouse_dbt", retry_policy=RETRY)
    def market_warehouse_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        try:
            target = load_target()
        except ConfigError as exc:
            raise dg.Failure(description=str(exc)) from None
        dbt_env(target)  # the absolute DuckDB path the loaders wrote to, no tracking
        with warehouse_lock(target, "dbt build"):
            with indirect_selection_default("buildable"):
                invocation = dbt.cli(["build"], context=context, target_path=run_target_path(context, manifest))
            yield from invocation.stream()

    return market_warehouse_dbt
