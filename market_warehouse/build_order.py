"""The order in which `mwh build` starts the nodes that are ready to run: the longest remaining chain first.

dbt hands a free thread the ready node of the lowest graph depth (levels after a root), then by name. An
incremental build is bound by its longest chain of dependent models (staging -> daily union -> adjustment
events and factors -> fct_bars_1d -> exponential states -> features v2), and depth-then-name starts the
side branches first: at 5M daily bars on TimescaleDB, after fct_bars_1d both threads took the data-quality
mart and the labels (2 s) before the exponential states, and after those the returns and features v1 (9 s)
before features v2, the longest node, which then ended the build alone.

Here a ready node's priority is the longest path of work from it to the end of the build: its own duration
plus the longest such path among its children (critical-path, "highest level first", list scheduling). A
node's duration is the one it took in the last `mwh build` that ran it, kept in
target/mwh_node_durations.json; a node never timed counts as the median of those known (1 s when none).
Only the order of ready nodes changes: what runs, and after what, is dbt's.

dbt has no setting for this: the priorities are computed by GraphQueue._get_scores (dbt/graph/queue.py), which
is replaced for the duration of one build (`longest_chain_first`). If a dbt version no longer has that
method, the build runs in dbt's own order (a warning in the log).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from market_warehouse.config import project_dir

log = logging.getLogger(__name__)

DURATIONS_FILE = "mwh_node_durations.json"


def durations_path() -> Path:
    return Path(os.environ.get("DBT_TARGET_PATH") or project_dir() / "target") / DURATIONS_FILE


def read_durations() -> dict[str, float]:
    """Seconds per node unique id, from the builds before (empty when none was kept)."""
    try:
        data = json.loads(durations_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def keep_durations(results) -> None:
    """Adds the execution times of a build's node results to the kept durations (a node not run keeps its
    earlier one)."""
    durations = read_durations()
    for r in results or []:
        node = getattr(r, "node", None)
        seconds = getattr(r, "execution_time", None)
        if node is not None and isinstance(seconds, (int, float)) and str(getattr(r, "status", "")) in (
                "success", "pass", "warn"):
            durations[node.unique_id] = round(float(seconds), 3)
    try:
        path = durations_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(durations, sort_keys=True, indent=0))
    except OSError as exc:  # a read-only target directory: the next build orders by depth for unknown nodes
        log.warning("node durations not kept in %s: %s", durations_path(), exc)


def critical_path_scores(graph, durations: Mapping[str, float]) -> dict[str, float]:
    """Per node of `graph` (a networkx DiGraph, edges parent -> child): minus the longest path of durations
    from the node to a node without children, the node included. Lower runs first."""
    import networkx as nx

    known = [durations[n] for n in graph.nodes if n in durations]
    default = statistics.median(known) if known else 1.0
    remaining: dict[str, float] = {}
    for node in reversed(list(nx.topological_sort(graph))):
        after = max((remaining[child] for child in graph.successors(node)), default=0.0)
        remaining[node] = durations.get(node, default) + after
    return {node: -length for node, length in remaining.items()}


@contextmanager
def longest_chain_first(durations: Mapping[str, float]) -> Iterator[bool]:
    """While open, dbt's graph queues order ready nodes by critical_path_scores; yields whether it could."""
    try:
        from dbt.graph.queue import GraphQueue
    except ImportError:  # pragma: no cover - dbt is a dependency
        yield False
        return
    original = getattr(GraphQueue, "_get_scores", None)
    if original is None:
        log.warning("dbt's GraphQueue has no _get_scores: the build runs in dbt's own order")
        yield False
        return

    def _get_scores(self, graph):
        return critical_path_scores(graph, durations)

    GraphQueue._get_scores = _get_scores
    try:
        yield True
    finally:
        GraphQueue._get_scores = original
