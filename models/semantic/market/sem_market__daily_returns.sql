{{
    config(
        materialized='view',
        schema='marts',
    )
}}

{#
    One row per symbol and session of fct_bars_1d with its close-to-close return on adjusted prices
    (adj_close over the previous session's adj_close, minus 1; null on a symbol's first bar). The base
    of the `daily_returns` semantic model: a return needs the previous row, which a MetricFlow measure
    cannot reach, so it is computed here, in a view over the mart (always as current as the mart).
#}

with

bars as (

    select * from {{ ref('fct_bars_1d') }}

),

lagged as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        adj_close,
        lag(adj_close) over (partition by symbol, exchange order by ts) as prev_adj_close
    from bars

),

final as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        adj_close,
        prev_adj_close,
        {{ mwh_safe_divide('adj_close', 'prev_adj_close') }} - 1 as daily_return
    from lagged

)

select * from final
