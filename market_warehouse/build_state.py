"""Which models a plain `mwh build` may leave alone: those whose inputs did not change since the last
build that succeeded (dbt's `state:modified+` idea, decided from the warehouse itself).

After a plain build (no selection) in which every model and snapshot succeeded, the warehouse keeps, in
raw.mwh_build_state, a fingerprint of the project and one per raw table the project reads (a source).
The next plain build leaves out (`--exclude`) every model and snapshot except:

- the descendants of every source whose fingerprint changed (rows loaded, replaced, undone or deleted:
  the row count and the sum of hash(run_id, loaded_at), or of the whole row for a table without them),
  except a source the models read only for their load marks (raw.loader_runs: meta read_for_marks_only,
  from market_warehouse/loaders/schema.py), whose changes alone change no model's rows;
- the models whose SQL, or a macro they call, reads the clock (run_started_at, current_timestamp, ...),
  and their descendants; a view that reads it is not re-created (it reads the clock when queried), the
  models built from it are;
- the models whose relation is missing from the warehouse, and their descendants.

A view among those is left standing (views_left_standing): it holds no rows, so new rows in what it reads
change nothing in it, as long as every parent it reads stays the same relation through the build. A parent
the build changes in place (an incremental model's delete and insert, a snapshot's merge) or does not run
does; a table or a view the build re-creates does not (on PostgreSQL the replaced relation is dropped with
`cascade`, which drops the views on it), and neither does a missing view. The models built from the view
still run for their own reasons.

A model that has rows only when some source has rows (meta `empty_without_sources`: a list of sources,
`source_name.table_name`; e.g. the bars of the series that predictions or signals refer to) is not run for
a change of its other parents while every one of those sources is empty and unchanged: it was built empty
and would be built empty again. Its descendants then run only for their own reasons. A market-only
warehouse (no ML records) thus leaves the ML marts alone after a bars load.

Bars are followed by interval, on DuckDB: raw.bars is fingerprinted per interval too, stg_market__bars keeps
a row's interval (meta.bar_interval_column), and a model that reads some intervals only says which where it
filters on them (mwh_read_interval: meta.reads_bar_interval_<interval>). A load of daily bars alone then
leaves out the models that read minute or hourly bars only (the rollups, fct_bars_1m, the intraday features,
the market metrics), and their descendants unless something else they read changed. A model that does not
say which intervals it reads runs after a load of any interval.

Everything is built, as before, when there is no stored state (a first build, or the previous build
failed: the state is removed when a plain build starts and written only when it succeeds), when the
project's fingerprint differs (any model, macro, seed, snapshot or config, dbt_project.yml (its vars
included), packages.yml, the env vars
the project reads, dbt's version, the target), on `--full-refresh`, when seeds are (re)loaded, and for any
build with its own selection (which keeps the stored state only when the project is the state's and
its flags are selection flags). Tests are not left out: `--indirect-selection empty` keeps the tests of the
models left out (they run on the unchanged relations).

How a source's fingerprint is taken depends on the engine:

- DuckDB: the row count and the sum of hash(run_id, loaded_at) (of the whole row for a table without
  them), one query over every source: about 0.15 s at 5M bars. A change made by hand without a loader,
  run_id or loaded_at (an UPDATE of prices) is not seen.
- PostgreSQL and TimescaleDB, where a count over the 5M-bar hypertable would cost seconds: the loaders'
  audit rows for the table (raw.loader_runs: every load, replacement and `mwh runs undo` writes or
  changes one in the same transaction as its rows), plus the server's own counters for the table and
  every chunk or partition under it (pg_stat_all_tables' inserted, updated and deleted rows, and each
  one's file node, which TRUNCATE and compression change, and the set of chunks, which drop_chunks and
  retention change). The audit part sees every load at once; the counters see the other writes (a
  retention delete, an UPDATE by hand) once the writing session's statistics reach the server, which
  is at its commit or exit, or within seconds: a build that starts in that moment leaves the change to
  the next build. With `track_counts = off` only the audit part is left. A counter reset
  (pg_stat_reset, a crash) counts as a change.

After a change that neither sees, run `mwh build --full-refresh` (as the incremental models already
require).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from market_warehouse.config import project_dir

log = logging.getLogger(__name__)

STATE_TABLE = "raw.mwh_build_state"
STATE_COLUMNS = "project varchar, sources varchar, built_at timestamp"
CLOCK_TOKENS = ("run_started_at", "current_timestamp", "current_date", "now()", "invocation_id",
                "localtimestamp", "get_current_timestamp", "current_time")
BUILT = ("model", "snapshot")
INTERVAL_COLUMN = "interval"  # raw.bars' bar length (market_warehouse/loaders/schema.py, BARS)
KEEPS_INTERVAL = "bar_interval_column"  # meta of a model whose rows keep their source row's interval
READS_INTERVAL = "reads_bar_interval_"  # meta prefix set by mwh_read_interval
EMPTY_WITHOUT = "empty_without_sources"  # meta: the sources without whose rows the model has none
# A source's fingerprint: one string, or for bars one per interval ({interval: fingerprint}).
Fingerprint = str | dict[str, str]
# The flags a build may pass and still be a plain build (everything the project builds). Any other flag
# (--select, --exclude, --selector, --resource-type, --full-refresh, --vars, --state, ...) builds everything.
PLAIN_FLAGS = ("--exclude-resource-type", "--exclude-resource-types", "--threads", "--fail-fast", "-x",
               "--no-fail-fast", "--quiet", "-q", "--no-partial-parse", "--partial-parse")


# A build with its own selection leaves the state as it was (what it builds, it builds from the current
# sources) when the project is the state's; any flag outside these and PLAIN_FLAGS (--vars, --state,
# --defer, ...) may build something the plain build would not, and other project files build other rows,
# so either removes the state.
SELECTION_FLAGS = ("-s", "--select", "-m", "--models", "--model", "--exclude", "--selector", "--resource-type",
                   "--resource-types", "--indirect-selection", "--full-refresh")


@dataclass
class SkipPlan:
    """What a plain build may leave out, and why (or why not)."""

    skipped: list[str] = field(default_factory=list)  # unique ids of the models/snapshots left out
    reason: str = ""
    project: str = ""
    sources: dict[str, Fingerprint] = field(default_factory=dict)
    stored: tuple[str, dict[str, Fingerprint]] | None = None
    empty_sources: set[str] = field(default_factory=set)  # unique ids of the sources that hold no rows


def is_plain(extra: Sequence[str]) -> bool:
    """`mwh build` with no selection of its own: every flag is one of PLAIN_FLAGS (with its value)."""
    return all(not a.startswith("-") or a.split("=", 1)[0] in PLAIN_FLAGS for a in extra)


def project_fingerprint(manifest, target) -> str:
    """One hash over what decides what the models build: every node's file checksum and config, every
    macro's SQL, the env vars the project read while parsing, dbt's version and the target."""
    import dbt.version

    digest = hashlib.sha256()

    def add(*parts) -> None:
        for p in parts:
            digest.update(str(p).encode())
            digest.update(b"\0")

    add(dbt.version.__version__, target.name, target.type)
    for name in ("dbt_project.yml", "packages.yml", "dependencies.yml"):  # vars, configs, packages
        path = project_dir() / name
        add(name, path.read_bytes() if path.exists() else b"")
    for uid in sorted(manifest.nodes):
        node = manifest.nodes[uid]
        config = node.config.to_dict() if hasattr(node.config, "to_dict") else node.config
        add(uid, getattr(node.checksum, "checksum", ""), json.dumps(config, sort_keys=True, default=str),
            getattr(node, "raw_code", ""))
    for uid in sorted(manifest.macros):
        add(uid, manifest.macros[uid].macro_sql)
    for uid in sorted(manifest.sources):
        src = manifest.sources[uid]
        add(uid, src.schema, src.identifier)
    for name in sorted(getattr(manifest, "env_vars", {}) or {}):
        add(name, manifest.env_vars[name])
    return digest.hexdigest()


def _source_key(src) -> tuple[str, str]:
    """A source's table as the warehouse lists it (`existing`): (schema, name), lower case."""
    return str(src.schema).lower(), str(src.identifier).lower()


def _source_tables(manifest) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for uid, src in manifest.sources.items():
        out.setdefault(_source_key(src), []).append(uid)
    return out


def source_fingerprints(wh, manifest, existing: set[tuple[str, str]]) -> dict[str, Fingerprint]:
    """Per source unique id: 'absent', or what says its rows changed (see the module docstring): the row
    count and a sum of row hashes on DuckDB (per interval, {interval: ...}, for a table with an interval
    column: the bars), the audit rows and the server's counters on PostgreSQL."""
    tables = _source_tables(manifest)
    present = [key for key in sorted(tables) if key in existing]
    out = {uid: "absent" for key, uids in tables.items() if key not in existing for uid in uids}
    if not present:
        return out
    if wh.target.type == "postgres":
        for key, fingerprint in _postgres_fingerprints(wh, present, existing).items():
            for uid in tables[key]:
                out[uid] = fingerprint
        return out
    cols: dict[tuple[str, str], set[str]] = {}
    schemas = sorted({s for s, _ in present})
    rows = wh.query("select table_schema, table_name, column_name from information_schema.columns "
                    f"where table_schema in ({', '.join(repr(s) for s in schemas)})")
    for s, t, c in rows:
        cols.setdefault((s.lower(), t.lower()), set()).add(c.lower())
    parts = []
    for i, (schema, name) in enumerate(present):
        columns = cols.get((schema, name), set())
        hashed = "hash(t.run_id, t.loaded_at)" if {"run_id", "loaded_at"} <= columns else "hash(t)"
        interval = f't."{INTERVAL_COLUMN}"' if INTERVAL_COLUMN in columns else "null"
        parts.append(f"select {i} as i, cast({interval} as varchar) as iv, count(*) as n, "
                     f'cast(coalesce(sum({hashed}), 0) as varchar) as h from "{schema}"."{name}" as t '
                     f"group by {interval}")
    per_table: dict[int, dict[str, str]] = {}
    for i, iv, n, h in wh.query(" union all ".join(parts)):
        per_table.setdefault(i, {})[iv] = f"{n}:{h}"
    for i, key in enumerate(present):
        by_interval = per_table.get(i, {})
        for uid in tables[key]:
            if None in by_interval or not by_interval:  # a table without intervals (or empty)
                out[uid] = by_interval.get(None, "0:0")
            else:  # bars: one fingerprint per interval
                out[uid] = dict(sorted(by_interval.items()))
    return out


def changed_intervals(current: Fingerprint, stored: Fingerprint | None) -> frozenset[str] | None:
    """The intervals whose bars changed between a source's stored and current fingerprints; None: not known
    per interval (every interval counts as changed)."""
    if not isinstance(current, dict) or not isinstance(stored, dict):
        return None
    return frozenset(iv for iv in current.keys() | stored.keys() if current.get(iv) != stored.get(iv))


def _postgres_fingerprints(wh, present: list[tuple[str, str]],
                           existing: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """PostgreSQL: per (schema, table), its audit rows in raw.loader_runs and the server's counters for it
    and every table under it (TimescaleDB chunks, partitions), two catalog-sized queries."""
    from market_warehouse.loaders.schema import LOADER_RUNS, RAW_SCHEMA

    names = ", ".join(f"('{s}', '{t}')" for s, t in present)
    counters = dict(wh.query(f"""
        with recursive roots as (
            select n.nspname as schema_name, c.relname as table_name, c.oid as relid
            from pg_class as c
            inner join pg_namespace as n on c.relnamespace = n.oid
            where (n.nspname, c.relname) in ({names})
        ),
        parts as (
            select schema_name, table_name, relid from roots
            union all
            select parts.schema_name, parts.table_name, i.inhrelid
            from parts inner join pg_inherits as i on i.inhparent = parts.relid
        )
        select
            parts.schema_name || '.' || parts.table_name,
            count(*) || ':' || md5(string_agg(
                parts.relid || '/' || c.relfilenode || '/' || coalesce(s.n_tup_ins, 0) || '/'
                || coalesce(s.n_tup_upd, 0) || '/' || coalesce(s.n_tup_del, 0), ',' order by parts.relid))
        from parts
        inner join pg_class as c on parts.relid = c.oid
        left join pg_stat_all_tables as s on parts.relid = s.relid
        group by parts.schema_name, parts.table_name"""))
    audit: dict[str, str] = {}
    if (RAW_SCHEMA, LOADER_RUNS.name) in existing:
        audit = dict(wh.query(f"""
            select
                lower(target_table),
                count(*) || ':' || sum(hashtext(run_id || '/' || source || '/' || status))
            from {LOADER_RUNS.qualified}
            group by lower(target_table)"""))
    out = {}
    for schema, name in present:
        qualified = f"{schema}.{name}"
        out[(schema, name)] = f"{counters.get(qualified, '')}|{audit.get(qualified, '')}"
    return out


def _macro_reads_clock(manifest, macro_id: str, memo: dict[str, bool]) -> bool:
    if macro_id in memo:
        return memo[macro_id]
    memo[macro_id] = False  # recursion guard
    macro = manifest.macros.get(macro_id)
    if macro is None:
        return False
    text = macro.macro_sql.lower()
    hit = any(t in text for t in CLOCK_TOKENS) or any(
        _macro_reads_clock(manifest, m, memo) for m in macro.depends_on.macros)
    memo[macro_id] = hit
    return hit


def _child_map(manifest) -> dict[str, list[str]]:
    """Each node's children: dbt's map when the parse filled it, else built from the nodes."""
    return manifest.child_map if manifest.child_map else manifest.build_child_map()


def clock_nodes(manifest) -> set[str]:
    """The models and snapshots that store what the clock said when they were built: those whose SQL, or a
    macro it calls (directly or not), reads the clock, and the nodes built from such a view. A view (or an
    ephemeral model) is not one of them: it reads the clock when it is queried, so its definition stays
    right and only what stores its rows runs again."""
    memo: dict[str, bool] = {}
    readers = []
    for uid, node in manifest.nodes.items():
        if node.resource_type not in BUILT:
            continue
        text = (getattr(node, "raw_code", "") or "").lower()
        if any(t in text for t in CLOCK_TOKENS) or any(
                _macro_reads_clock(manifest, m, memo) for m in node.depends_on.macros):
            readers.append(uid)
    child_map = _child_map(manifest)
    out, seen, todo = set(), set(), readers
    while todo:
        uid = todo.pop()
        node = manifest.nodes.get(uid)
        if uid in seen or node is None or node.resource_type not in BUILT:
            continue
        seen.add(uid)
        if node.config.materialized in ("view", "ephemeral"):
            todo.extend(child_map.get(uid, []))
        else:
            out.add(uid)
    return out


def _read_for_marks_only(manifest, uid: str) -> bool:
    """A source the models read only for their load marks (raw.loader_runs; schema.py's
    read_for_marks_only): its changes alone change no model's rows."""
    src = manifest.sources[uid]
    meta = getattr(src.config, "meta", None) or getattr(src, "meta", None) or {}
    return bool(meta.get("read_for_marks_only"))


def _meta(node) -> dict:
    return (getattr(node.config, "meta", None) or {}) if node is not None else {}


def empty_without(manifest, node) -> list[str]:
    """The unique ids of the sources a model names in meta `empty_without_sources` (`source.table`). A name
    that is no source is kept as it is: never empty, so the model runs as if it had no such meta."""
    names = _meta(node).get(EMPTY_WITHOUT) or []
    if not names:
        return []
    by_name = {f"{s.source_name}.{s.name}": uid for uid, s in manifest.sources.items()}
    return [by_name.get(n, n) for n in names]


def empty_sources(wh, manifest, existing: set[tuple[str, str]]) -> set[str]:
    """The sources named in some model's `empty_without_sources` that hold no rows (or no table): one
    `exists` query for all of them, on either engine."""
    named = sorted({uid for node in built_nodes(manifest).values() for uid in empty_without(manifest, node)})
    out, probes = set(), []
    for uid in named:
        src = manifest.sources.get(uid)
        if src is None:
            continue
        key = _source_key(src)
        if key not in existing:
            out.add(uid)
        else:
            probes.append((uid, f'select {len(probes)} as i, exists (select 1 from "{key[0]}"."{key[1]}") as has_rows'))
    if probes:
        for i, has_rows in wh.query(" union all ".join(sql for _, sql in probes)):
            if not has_rows:
                out.add(probes[i][0])
    return out


def _must_run(manifest, roots: dict[str, frozenset[str] | None], empty: set[str] = frozenset()) -> set[str]:
    """The roots and their descendants, following bars by interval (module docstring): `roots` maps a node
    or source to the intervals of its rows that changed (None: its rows changed, whatever their interval).
    A model whose rows keep their interval (meta bar_interval_column) passes the intervals on; a model that
    reads some intervals only (mwh_read_interval) runs when one of them changed; any other model runs.
    A model whose `empty_without_sources` are all in `empty` and none a root is not run for its parents.
    """
    child_map = _child_map(manifest)
    changed: dict[str, frozenset[str] | None] = dict(roots)
    todo = list(roots)
    while todo:
        parent = todo.pop()
        intervals = changed[parent]
        for child in child_map.get(parent, []):
            node = manifest.nodes.get(child)
            meta = _meta(node)
            if meta.get(EMPTY_WITHOUT) and child not in roots:
                needed = empty_without(manifest, node)
                if all(uid in empty and uid not in roots for uid in needed):
                    continue  # built empty, and empty it stays
            passed: frozenset[str] | None = None
            if intervals is not None:
                if meta.get(KEEPS_INTERVAL):
                    passed = intervals
                else:
                    reads = {k[len(READS_INTERVAL):] for k, v in meta.items() if k.startswith(READS_INTERVAL) and v}
                    if reads and not reads & intervals:
                        continue  # it reads none of the intervals that changed
            if child in changed:
                before = changed[child]
                merged = None if before is None or passed is None else before | passed
                if merged == before:
                    continue
                changed[child] = merged
            else:
                changed[child] = passed
            todo.append(child)
    return set(changed)


def views_left_standing(manifest, must: set[str], missing: set[str]) -> set[str]:
    """The views in `must` that need not be re-created (module docstring): not missing, and each parent is
    a source, is not run, is changed in place (incremental without `full_refresh: true`, snapshot), or is a
    view left standing too; an ephemeral parent stands when its own parents do (its SQL is part of the
    view)."""

    memo: dict[str, bool] = {}

    def stays(uid: str) -> bool:
        """The relation is the same one after the build (a view: left standing)."""
        node = manifest.nodes.get(uid)
        if node is None or uid not in must:
            return True  # a source, or a node this build does not run
        if uid not in memo:
            materialized = node.config.materialized
            if materialized in ("ephemeral", "view"):
                memo[uid] = ((materialized == "ephemeral" or uid not in missing)
                             and all(stays(p) for p in node.depends_on.nodes))
            else:  # an incremental model configured `full_refresh: true` is replaced on every run
                memo[uid] = node.resource_type == "snapshot" or (materialized == "incremental"
                                                                 and not getattr(node.config, "full_refresh", None))
        return memo[uid]

    return {uid for uid in must if uid in manifest.nodes and manifest.nodes[uid].resource_type == "model"
            and manifest.nodes[uid].config.materialized == "view" and stays(uid)}


def built_nodes(manifest) -> dict[str, object]:
    """The models and snapshots a plain build runs (enabled, not ephemeral)."""
    return {uid: n for uid, n in manifest.nodes.items()
            if n.resource_type in BUILT and n.config.materialized != "ephemeral"}


def _state_rows(wh) -> list[tuple] | None:
    """The state table's rows; None when there is no table yet (a first build)."""
    try:
        return wh.query(f"select project, sources from {STATE_TABLE}")
    except Exception:  # noqa: BLE001 - no table yet
        return None


def read_state(wh) -> tuple[str, dict[str, Fingerprint]] | None:
    rows = _state_rows(wh)
    if rows is None or len(rows) != 1:
        return None
    return rows[0][0], json.loads(rows[0][1])


def clear_state(wh) -> None:
    wh.query(f"delete from {STATE_TABLE}")


def write_state(wh, project: str, sources: dict[str, Fingerprint]) -> None:
    """Keep the fingerprints of a build that succeeded. Where the build's role may not write raw (`mwh roles`
    creates the table for it), a warning: the next build runs every node."""
    try:
        if _state_rows(wh) is None:  # PostgreSQL checks CREATE on raw even when the table exists
            wh.query(f"create table {STATE_TABLE} ({STATE_COLUMNS})")
        wh.query(f"delete from {STATE_TABLE}")
        wh.query(f"insert into {STATE_TABLE} values ('{project}', '{json.dumps(sources, sort_keys=True)}', "
                 "cast(now() as timestamp))")
    except Exception as exc:  # noqa: BLE001 - a privilege or a read-only warehouse: the build itself succeeded
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"mwh build: warning: build state not kept in {STATE_TABLE} ({first}); the next build runs "
              "every model (run `mwh roles` to give dbt's role the table)")


def observe(wh, manifest, target, extra: Sequence[str], existing: set[tuple[str, str]]) -> SkipPlan:
    """Before a build: the fingerprints (a plain build or a plain --full-refresh), the stored
    state, which is then removed, so that a build that does not finish leaves none."""
    plan = SkipPlan()
    if target.type not in ("duckdb", "postgres"):
        plan.reason = f"every node ({target.type}: no build state kept)"
        return plan
    if not is_plain([a for a in extra if a != "--full-refresh"]):
        plan.reason = "every selected node (a build with its own selection)"
        known = PLAIN_FLAGS + SELECTION_FLAGS
        stored = read_state(wh)
        if stored is not None and (
                not all(not a.startswith("-") or a.split("=", 1)[0] in known for a in extra)
                or stored[0] != project_fingerprint(manifest, target)):
            # flags that may build what a plain build would not, or other project files than the state's:
            # what this build writes no longer follows from the stored project
            clear_state(wh)
        return plan
    plan.project = project_fingerprint(manifest, target)
    plan.sources = source_fingerprints(wh, manifest, existing)
    plan.empty_sources = empty_sources(wh, manifest, existing)
    plan.stored = read_state(wh)
    if plan.stored is not None:
        try:
            clear_state(wh)
        except Exception:  # noqa: BLE001 - not ours to write (no `mwh roles`): not trusted, every node runs
            plan.stored = None
    if "--full-refresh" in extra:
        plan.reason = "every node (--full-refresh)"
    return plan


def decide(plan: SkipPlan, manifest, extra: Sequence[str], seeds_excluded: bool,
           existing: set[tuple[str, str]]) -> SkipPlan:
    """Fills plan.skipped: what this build may leave out (see the module docstring)."""
    if not plan.project or plan.reason:
        return plan
    if plan.stored is None:
        plan.reason = "every node (no state of a previous successful build)"
        return plan
    project, sources = plan.stored
    if project != plan.project:
        plan.reason = "every node (the project changed since the last build)"
        return plan
    if not seeds_excluded:
        plan.reason = "every node (seeds are loaded)"
        return plan
    nodes = built_nodes(manifest)
    changed = {uid: changed_intervals(fp, sources.get(uid)) for uid, fp in plan.sources.items()
               if sources.get(uid) != fp and not _read_for_marks_only(manifest, uid)}
    missing = {uid for uid, n in nodes.items()
               if (str(n.schema).lower(), str(n.alias or n.name).lower()) not in existing}
    clock = clock_nodes(manifest)
    must = _must_run(manifest, {**changed, **dict.fromkeys(missing | clock)}, plan.empty_sources)
    standing = views_left_standing(manifest, must, missing)
    plan.skipped = sorted(uid for uid in nodes if uid not in must or uid in standing)
    names = sorted(uid.split(".", 2)[2] + (f"[{', '.join(sorted(iv))}]" if iv is not None else "")
                   for uid, iv in changed.items())
    empty = sorted(uid.split(".", 2)[2] for uid in plan.empty_sources)
    plan.reason = (f"{len(nodes) - len(plan.skipped)} of {len(nodes)} models/snapshots: changed sources "
                   f"{names or 'none'}, {len(clock)} reading the clock, {len(missing)} missing, and their "
                   f"descendants, but {len(standing)} views left standing "
                   f"(empty sources: {', '.join(empty) or 'none'})")
    return plan


def skip_args(manifest, plan: SkipPlan) -> list[str]:
    """dbt arguments leaving out plan.skipped and nothing else (their tests still run)."""
    if not plan.skipped:
        return []
    names = []
    for uid in plan.skipped:
        node = manifest.nodes[uid]
        version = getattr(node, "version", None)
        names.append(f"{node.name}.v{version}" if version is not None else node.name)
    return ["--exclude", *names, "--indirect-selection", "empty"]


def build_complete(manifest, plan: SkipPlan, result) -> bool:
    """Every model and snapshot either succeeded in this build or was left out by the plan."""
    done = {r.node.unique_id for r in (result or []) if str(r.status) in ("success", "pass")}
    return set(built_nodes(manifest)) <= done | set(plan.skipped)
