{#
    The grain test: no two rows share the values of `columns` (a model's key). Fails with each
    duplicated key and how often it occurs.

    `scope='changed_return_series'` (a table of return series: series_type, series_name, exchange,
    session_date): on an incremental build, only the keys of the rows of the series whose bars were
    loaded since the build before, from `mwh_test_scope_days` before their first new bar, and of the
    portfolios from the earliest of those (mwh_test_changed_return_keys), checked against every row of
    the table: a new row colliding with an old one is found, whatever the column that collides. Every
    key is checked as before on a first build, a full refresh, with `mwh_full_tests`, or with more
    changed series than `mwh_test_scope_max_series`. On TimescaleDB at 5M daily bars the whole-table
    check of int_risk__daily_returns_unioned's (series, session_date) took 8.7 s of the incremental
    build's tests (no index on that key).
#}
{% test unique_combination(model, columns, scope=none) %}

{%- set changed_keys = mwh_test_changed_return_keys(model, columns) if scope == 'changed_return_series' else none %}

select
    {{ columns | join(', ') }},
    count(*) as row_count
from {{ model }}
{%- if changed_keys is not none %}
where ({{ columns | join(', ') }}) in (
    {{ changed_keys | indent(4) }}
)
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
