"""What `mwh build` and `mwh demo` print after dbt: the tests that warned (data facts) or stopped the
build (pipeline faults), and the data-quality mart counted per check with its top symbols.

Data facts warn and are recorded in marts.fct_data_quality_issues; pipeline faults stop the build
(docs/data_quality.md). This report never raises: a warehouse without the mart says so in one line.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from types import SimpleNamespace

from market_warehouse.config import Target, load_target, target_dir
from market_warehouse.dbt import Warehouse, build

MART = "marts.fct_data_quality_issues"
TOP_SYMBOLS = 5


def last_run_results() -> list:
    """The node results of the last dbt invocation, from target/run_results.json (DBT_TARGET_PATH)."""
    path = target_dir() / "run_results.json"
    try:
        results = json.loads(path.read_text()).get("results", [])
    except (OSError, ValueError):
        return []
    return [SimpleNamespace(status=r.get("status"), failures=r.get("failures"), message=r.get("message"),
                            node=SimpleNamespace(name=_node_name(r.get("unique_id", "?")),
                                                 unique_id=r.get("unique_id")))
            for r in results]


def _node_name(unique_id: str) -> str:
    # test.market_warehouse.<name>.<hash>, model.market_warehouse.<name>[.v1], unit tests
    parts = unique_id.split(".")
    if parts[0] == "unit_test":  # unit_test.market_warehouse.<model>.<unit test name>
        return parts[-1]
    return parts[2] if len(parts) >= 3 else unique_id


def _node_results(dbt_result) -> list:
    if dbt_result is None:
        return last_run_results()
    return list(getattr(getattr(dbt_result, "result", None), "results", None) or [])


def test_lines(dbt_result) -> list[str]:
    """One line per test that warned or failed, and per node that errored, with its row count."""
    warned, stopped = [], []
    for r in _node_results(dbt_result):
        status = str(getattr(r, "status", ""))
        node = getattr(r, "node", None)
        name = getattr(node, "name", None) or getattr(node, "unique_id", "?")
        failures = getattr(r, "failures", None)
        rows = f"{failures:,} row(s)" if isinstance(failures, int) else ""
        if status == "warn":
            warned.append(f"  warn   {name:<60} {rows}")
        elif status in ("fail", "error"):
            message = (getattr(r, "message", "") or "").strip().splitlines()
            stopped.append(f"  {status:<6} {name:<60} {rows or (message[0][:100] if message else '')}")
    skipped = sum(str(getattr(r, "status", "")) == "skipped" for r in _node_results(dbt_result))
    lines = []
    if warned:
        lines.append(f"{len(warned)} test(s) warned (data facts, recorded in {MART}):")
        lines += sorted(warned)
    if stopped:
        lines.append(f"{len(stopped)} node(s) stopped the build (pipeline faults)"
                     + (f", {skipped} skipped after them" if skipped else "") + ":")
        lines += sorted(stopped)
    return lines


def mart_lines(sink) -> list[str]:
    """The current issues of the data-quality mart: per check, open and acknowledged, top symbols."""
    try:
        rows = sink.query(f"select check_name, symbol, is_acknowledged, issue_count from {MART} "
                          f"where is_current")
    except Exception as exc:  # noqa: BLE001 - not built (a selected build, a failed one): say so, never a traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [f"{MART}: not available ({first[:120]})"]
    open_rows: Counter = Counter()
    acknowledged: Counter = Counter()
    by_symbol: dict[str, Counter] = defaultdict(Counter)
    for check, symbol, is_ack, _count in rows:
        if is_ack:
            acknowledged[check] += 1
        else:
            open_rows[check] += 1
            by_symbol[check][symbol] += 1
    total_open, total_ack = sum(open_rows.values()), sum(acknowledged.values())
    lines = [f"{MART}: {total_open:,} open issue(s), {total_ack:,} acknowledged (seeds/known_data_issues.csv)"]
    if rows:
        lines.append(f"  {'check':<38} {'open':>6} {'ack':>5}  top symbols (open rows)")
        for check in sorted(set(open_rows) | set(acknowledged), key=lambda c: (-open_rows[c], c)):
            ranked = sorted(by_symbol[check].items(), key=lambda item: (-item[1], item[0]))
            top = ", ".join(f"{s} ({n})" for s, n in ranked[:TOP_SYMBOLS])
            more = len(by_symbol[check]) - TOP_SYMBOLS
            if more > 0:
                top += f", +{more} more"
            lines.append(f"  {check:<38} {open_rows[check]:>6,} {acknowledged[check]:>5,}  {top}")
    return lines


def build_report(dbt_result, target: str | Target | None, warehouse: Warehouse | None = None) -> str:
    """`dbt_result`: dbtRunner's result, or None to read the last run's target/run_results.json.
    `warehouse`: an open connection to use (else one is opened)."""
    lines = ["", "== data quality"]
    lines += test_lines(dbt_result)
    try:
        if warehouse is not None:
            lines += mart_lines(warehouse)
        else:
            if not isinstance(target, Target):
                target = load_target(target)
            with Warehouse(target) as wh:
                lines += mart_lines(wh)
    except Exception as exc:  # noqa: BLE001 - the warehouse itself is unreachable: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        lines.append(f"{MART}: not available ({first[:120]})")
    return "\n".join(lines)


def print_build_report(dbt_result, target: str | Target | None) -> None:
    print(build_report(dbt_result, target), flush=True)


def build_and_report(target: str | Target | None, extra) -> int:
    """`mwh build`: market_warehouse.dbt.build, then this report (also when models or tests failed). Not when
    the build ran no node (dbt's parse or the selection failed, or dbt stopped on an error before any node):
    the report would show the last build's issues as this one's, and the error is then the last output."""

    def report(wh: Warehouse, res) -> None:
        if res is not None and res.exception is None:
            print(build_report(res, target, wh), flush=True)

    return build(target, extra, after=report)
