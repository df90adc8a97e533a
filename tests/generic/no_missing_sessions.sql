{#
    Completeness against the trading calendar: fails with one row per (symbol, session) that has bars
    missing between the symbol's first and last bar, naming the symbol, the session date, how many bars
    are missing and the first and last missing bar time. See macros/market/completeness.sql.

    acknowledged_check  optional check name in the `known_data_issues` seed (`missing_sessions`):
                        sessions acknowledged there are left out (they stay listed, acknowledged, in
                        fct_data_quality_issues). See docs/data_quality.md.
#}
{% test no_missing_sessions(model, bar_interval, interval_column=none, acknowledged_check=none) %}

with

failures as (

    {{ mwh_missing_sessions(model, bar_interval, interval_column) | indent(4) }}

)

select *
from failures
{% if acknowledged_check is not none -%}
where not {{ mwh_is_acknowledged([acknowledged_check], 'failures', 'failures.session_date') }}
{%- endif %}

{% endtest %}
