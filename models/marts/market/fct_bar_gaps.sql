{{
    config(
        indexes=mwh_indexes([{'columns': ['symbol', 'session_date desc']}]),
    )
}}

{#
    Every (symbol, interval, session) with bars missing between the symbol's first and last loaded bar
    of that interval, against the symbol's trading calendar. The same logic as the
    `no_missing_sessions` test (macros/market/completeness.sql), kept as a table for analysts.
#}

with

{% for bar_interval in var('gap_check_intervals') %}
missing_{{ bar_interval }} as (

    {{ mwh_missing_sessions(ref('stg_market__bars'), bar_interval, 'bar_interval') | indent(4) }}

),

{% endfor %}

unioned as (

    {% for bar_interval in var('gap_check_intervals') -%}
    select * from missing_{{ bar_interval }}
    {% if not loop.last %}union all
    {% endif -%}
    {%- endfor %}

),

final as (

    select
        symbol,
        exchange,
        bar_interval,
        session_date,
        missing_bars,
        expected_bars,
        missing_bars = expected_bars as is_whole_session_missing,
        first_missing_ts,
        last_missing_ts
    from unioned

)

select * from final
