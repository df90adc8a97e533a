"""`mwh build` starts the ready node with the longest remaining chain of work first (market_warehouse/
build_order.py), by the durations its earlier builds kept, where dbt would take the lowest depth, then the
name."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import networkx as nx

from market_warehouse import build_order

MODELS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
BARS = "model.market_warehouse.stg_market__bars"
ACTIONS = "model.market_warehouse.stg_market__corporate_actions"


def test_scores_put_the_longest_remaining_chain_first():
    # a -> b -> c and a -> d: b and d are ready together after a, at the same depth; b leads the longer chain.
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("a", "d"), ("e", "d")])
    scores = build_order.critical_path_scores(graph, {"a": 1.0, "b": 2.0, "c": 5.0, "d": 1.0, "e": 0.5})
    assert scores == {"a": -8.0, "b": -7.0, "c": -5.0, "d": -1.0, "e": -1.5}
    # a node never timed counts as the median of the known (of 1, 2, 5, 1: 1.5)
    assert build_order.critical_path_scores(graph, {"a": 1.0, "b": 2.0, "c": 5.0, "d": 1.0})["e"] == -2.5


def _started(uid: str) -> datetime:
    results = json.loads((Path(build_order.durations_path().parent) / "run_results.json").read_text())["results"]
    (result,) = [r for r in results if r["unique_id"] == uid]
    (execute,) = [t for t in result["timing"] if t["name"] == "execute"]
    return datetime.fromisoformat(execute["started_at"].replace("Z", "+00:00"))


def test_build_starts_the_longest_kept_duration_first(duckdb_target):
    """Two staging models, both ready at the start, on one thread: dbt's own order is by name (the bars
    first); with the corporate actions kept as the longer node, they run first, and the build keeps the
    durations it measured."""
    from dbt.graph.queue import GraphQueue

    from market_warehouse.cli import main as mwh

    original = GraphQueue._get_scores
    select = ["--select", "stg_market__bars", "stg_market__corporate_actions", "--threads", "1", *MODELS]
    assert mwh(["build", *select]) == 0
    assert _started(BARS) < _started(ACTIONS)  # nothing kept for them before: equal scores, by name
    kept = build_order.read_durations()
    assert set(kept) >= {BARS, ACTIONS} and all(v >= 0 for v in kept.values())

    build_order.durations_path().write_text(json.dumps({BARS: 0.1, ACTIONS: 100.0}))
    assert mwh(["build", *select]) == 0
    assert _started(ACTIONS) < _started(BARS)
    assert GraphQueue._get_scores is original  # restored after the build
