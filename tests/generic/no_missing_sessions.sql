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

    {{ missing_sessions(model, bar_interval, interval_column) | indent(4) }}

)

select *
from failures
{% if acknowledged_check is not none -%}
where not exists (
    select 1
    from {{ ref('known_data_issues') }} as known
    where
        known.check_name = '{{ acknowledged_check }}'
        and (known.symbol is null or known.symbol = failures.symbol)
        and (known.exchange is null or known.exchange = failures.exchange)
        and (known.start_date is null or failures.session_date >= known.start_date)
        and (known.end_date is null or failures.session_date <= known.end_date)
)
{%- endif %}

{% endtest %}
