"""Running dbt from Python (dbtRunner), against the same profile the loaders use, and `mwh build`.

`build()` is what `mwh build [dbt args...]` runs. It keeps builds from corrupting each other:

- The seeds' checksum (which seed files the warehouse's `reference` tables hold) is recorded only when
  this run loaded every seed, so a selected build that leaves the seeds out never makes a later plain
  build skip them. A plain build reloads the seeds when their files changed or a seed table is missing.
- A selected build (`--select ...`) also builds the ancestors of its selection that do not exist in
  the warehouse yet (seeds included), and runs only the tests whose parents are built or exist
  (`--indirect-selection buildable`, unless you pass your own).
- After the build it reports the ML records that could not be matched to a bar
  (marts.fct_ml_unmatched_records).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from market_warehouse.config import Target, load_target, profiles_dir, project_dir
from market_warehouse.loaders.sinks import open_sink

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
    Raises nothing for failed models/tests: check `.success`. `manifest` (from a `parse`) skips parsing."""
    from dbt.cli.main import dbtRunner  # deferred: dbt takes seconds to import; loads and reads never need it

    if not isinstance(target, Target):
        target = load_target(target)
    dbt_env(target)
    pdir = project_dir()
    argv = [*args, "--project-dir", str(pdir), "--profiles-dir", str(profiles_dir()),
            "--target", target.name]
    if quiet:
        argv = ["--quiet", *argv]
    if log_level:
        argv = ["--log-level", log_level, *argv]
    cwd = os.getcwd()
    os.chdir(pdir)  # dbt resolves target/ and logs/ against the working directory
    try:
        return dbtRunner(manifest=manifest).invoke(argv)
    finally:
        os.chdir(cwd)


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


def _existing_relations(target: Target) -> set[tuple[str, str]]:
    """(schema, name) of every table and view in the warehouse, lower case."""

    with open_sink(target, tables=()) as sink:
        rows = sink.query("select table_schema, table_name from information_schema.tables")
    return {(s.lower(), n.lower()) for s, n in rows}


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
               checksum: str) -> BuildPlan:
    """The dbt build arguments for `mwh build <extra>` on this warehouse (see the module docstring)."""
    args = list(extra)
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


def report_unmatched(target: Target) -> int:
    """Print how many ML records the build could not match to a bar; returns the count."""

    try:
        with open_sink(target, tables=()) as sink:
            rows = sink.query("select record_type, reason, count(*) from marts.fct_ml_unmatched_records "
                              "group by record_type, reason order by record_type, reason")
    except Exception:  # noqa: BLE001 - the mart is not built (market-only selection)
        return 0
    total = sum(r[2] for r in rows)
    if total:
        print(f"warning: {total:,} ML record(s) not matched to a bar (marts.fct_ml_unmatched_records):")
        for kind, reason, n in rows:
            print(f"  {n:>8,} {kind}: {reason}")
    return total


def build(target: str | Target | None, extra: Sequence[str], quiet: bool = False) -> int:
    """`mwh build [dbt args...]`: exit code 0 when dbt succeeded, else 1."""

    if not isinstance(target, Target):
        target = load_target(target)
    checksum = seeds_checksum()
    with open_sink(target) as sink:
        stored = sink.stored_seeds_checksum()
    parsed = run_dbt(["parse"], target, quiet=True)
    if not parsed.success:
        print(f"mwh build: dbt parse failed: {parsed.exception or 'see logs/dbt.log'}")
        return 1
    manifest = parsed.result
    try:
        plan = plan_build(extra, target, manifest, stored, checksum)
    except RuntimeError as exc:
        print(f"mwh build: {exc}")
        return 1
    if plan.added_parents:
        print(f"mwh build: also building {len(plan.added_parents)} missing parent(s) of the selection: "
              + ", ".join(plan.added_parents))
    res = run_dbt(plan.args, target, quiet=quiet, manifest=manifest)
    if not plan.seeds_excluded and _all_seeds_loaded(manifest, res.result):
        with open_sink(target) as sink:
            sink.store_seeds_checksum(checksum)
    report_unmatched(target)
    return 0 if res.success else 1
