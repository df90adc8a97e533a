{#
    Completeness against the trading calendar: fails with one row per (symbol, session) that has bars
    missing between the symbol's first and last bar, naming the symbol, the session date, how many bars
    are missing and the first and last missing bar time. See macros/market/completeness.sql.

    acknowledged_check  optional check name in the `known_data_issues` seed (`missing_sessions`):
                        sessions acknowledged there are left out (they stay listed, acknowledged, in
                        fct_data_quality_issues). See docs/data_quality.md.

    Bounded by default: only the series with bars loaded into stg_market__bars since the build before
    (int_market__build_marks; mwh_test_changed_window in macros/market/test_scope.sql) are checked,
    from `mwh_test_lookback_days` (UTC midnight) before the first of those bars on (what the last
    loads changed). `--vars '{mwh_full_tests: true}'` checks every bar (the nightly job). A first build
    (or a full refresh of the marks) is checked in full either way.
#}
{% test no_missing_sessions(model, bar_interval, interval_column=none, acknowledged_check=none) %}

with

{% if not var('mwh_full_tests', false) -%}
test_window as (

    {{ mwh_test_changed_window(bar_interval) | indent(4) }}

),

{% endif -%}

failures as (

    {{ mwh_missing_sessions(
        model, bar_interval, interval_column, none if var('mwh_full_tests', false) else 'test_window'
    ) | indent(4) }}

)

select *
from failures
{% if acknowledged_check is not none -%}
where not {{ mwh_is_acknowledged([acknowledged_check], 'failures', 'failures.session_date') }}
{%- endif %}

{% endtest %}
