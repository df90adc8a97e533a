"""PostgreSQL's fast rounding of the features (macros/cross_db.sql, mwh_round_double_column) gives the same
bits as the numeric round trip it replaces (postgres__mwh_round): on random magnitudes, on values built
next to the ties of the 10-decimal grid (where a plain double round differs), and on NaN, infinities,
-0, huge values and null. It falls back to numeric near a tie and for |x| >= 1e4; the check that the
plain double round differs on the same values shows the values reach the fallback."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[3]

VALUES = """
    select (random() - 0.5) * power(10, (random() * 24 - 16)) as x from generate_series(1, 200000)
    union all
    select (floor(random() * power(10, m)) + 0.5) / 1e10 * s + d * 1e-26 * power(10, m)
    from generate_series(1, 5000) as g (g), (values (2), (6), (9), (10), (11), (12), (13), (14)) as m (m),
        (values (-1.0::float8), (1.0::float8)) as s (s), (values (0), (1), (-1), (7)) as d (d)
    union all
    select v from unnest(array['NaN', 'Infinity', '-Infinity', '-0', '0', null, 9999.99999999995, 1e4, -1e4,
        0.00000000005, -0.00000000005, 0.00000000004999999, 1e300, -1e-300]::float8[]) as v
"""


def _compiled(sql: str) -> str:
    from dbt.cli.main import dbtRunner
    res = dbtRunner().invoke(["--no-use-colors", "--quiet", "compile", "--inline", sql, "--project-dir", str(REPO)])
    assert res.success, res.exception
    return res.result.results[0].node.compiled_code


@pytest.mark.postgres
def test_fast_round_equals_numeric_round(timescale_target):
    compiled = _compiled(
        "select x, {{ mwh_round_double_column('x', 10) }} as fast, {{ mwh_round('x', 10) }} as num, "
        "round(x * cast(1e10 as double precision)) / cast(1e10 as double precision) as plain "
        "from stress_values")
    t = timescale_target
    with psycopg.connect(host=t.host, port=t.port, user=t.user, password=t.password or None,
                         dbname=t.dbname) as conn:
        conn.execute(f"create temporary table stress_values as select cast(x as double precision) as x from ({VALUES}) as v")
        values, differ, plain_differ = conn.execute(f"""
            select
                count(*),
                count(*) filter (where float8send(fast) is distinct from float8send(num)),
                count(*) filter (where abs(x) < 1e4 and float8send(plain + 0) is distinct from float8send(num))
            from ({compiled}) as rounded""").fetchone()
    assert values > 300_000
    assert differ == 0, f"{differ} of {values} values round to other bits than the numeric round trip"
    assert plain_differ > 1000  # the near-tie values are there: a plain double round gets them wrong
