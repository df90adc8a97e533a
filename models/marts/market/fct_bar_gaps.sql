{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ mwh_bar_gaps_forget_changed_once() }}",
        post_hook="{{ mwh_mark_checked_through(key=['symbol', 'exchange', 'bar_interval', 'first_missing_ts']) }}",
        indexes=mwh_indexes([{'columns': ['symbol', 'last_missing_ts desc']}]),
    )
}}

{#
    Gaps in the loaded bars, as ranges: one row per run of consecutive missing bars between two loaded
    bars of a (symbol, exchange, interval), against the symbol's trading calendar, with the sessions it
    touches and how many bars are missing. Computed from the bars that exist (lead() over each series'
    positions in its calendar; macros/market/completeness.sql), so a 22-month outage of a 1-minute feed
    is one row, never a row per missing bar. The `no_missing_sessions` test spreads the same ranges over
    the sessions they touch.

    Incremental: a run recomputes, per series with bars changed in stg_market__bars since the mart's
    high-water mark (checked_through_loaded_at, the newest staged load it has seen), the gaps after
    the bar preceding its earliest changed bar; the pre-hook computes that window once (a temporary
    table the model reads) and forgets the old gaps there first. A late
    bar that fills or splits a gap thus updates it. The mark is also kept in a one-row table
    (mwh_mark_table, macros/market/incremental.sql), so an empty mart (no gaps at all) keeps it too.
#}

{%- set intervals = var('gap_check_intervals') %}

with

{% if is_incremental() -%}
gaps_window as (

    select * from {{ mwh_changed_window_table() }}

),

{% endif -%}

{% for bar_interval in intervals %}
ranges_{{ bar_interval }} as (

    {{ mwh_bar_gap_ranges(
        ref('stg_market__bars'), bar_interval, 'bar_interval',
        'gaps_window' if is_incremental() else none
    ) | indent(4) }}

),

{% endfor %}

unioned as (

    {% for bar_interval in intervals -%}
    select * from ranges_{{ bar_interval }}
    {% if not loop.last %}union all
    {% endif -%}
    {%- endfor %}

),

final as (

    select
        symbol,
        exchange,
        bar_interval,
        first_missing_ts,
        last_missing_ts,
        first_session_date,
        last_session_date,
        missing_sessions,
        missing_bars,
        (
            select max(staged.loaded_at) as loaded_at from {{ ref('stg_market__bars') }} as staged
        ) as checked_through_loaded_at
    from unioned

)

select * from final
