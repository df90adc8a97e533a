{{
    config(
        materialized='view',
        schema='marts',
    )
}}

{#
    fct_signal_performance (one row per strategy, model_key and symbol, plus symbol 'ALL' per
    strategy and model) with the time of its latest trade: the base of the `signal_books` semantic
    model. MetricFlow needs a time dimension for a measure, and max drawdown (the largest fall of the
    cumulative trade return from its running peak, in exit order) is a running computation MetricFlow
    cannot express, so the semantic layer exposes the mart's precomputed max_drawdown.
#}

with

performance as (

    select * from {{ ref('fct_signal_performance') }}

),

outcomes as (

    select * from {{ ref('fct_signal_outcomes') }}

),

last_per_symbol as (

    select
        strategy,
        model_key,
        symbol,
        max(coalesce(exit_ts, signal_ts)) as last_trade_ts
    from outcomes
    group by strategy, model_key, symbol

),

last_per_book as (

    select
        strategy,
        model_key,
        symbol,
        last_trade_ts
    from last_per_symbol
    union all
    select
        strategy,
        model_key,
        'ALL' as symbol,
        max(last_trade_ts) as last_trade_ts
    from last_per_symbol
    group by strategy, model_key

),

final as (

    select
        performance.strategy,
        performance.model_key,
        performance.symbol,
        performance.n_signals,
        performance.n_trades,
        performance.win_rate,
        performance.profit_factor,
        performance.max_drawdown,
        last_per_book.last_trade_ts
    from performance
    left join last_per_book
        on
            performance.strategy = last_per_book.strategy
            and performance.model_key = last_per_book.model_key
            and performance.symbol = last_per_book.symbol

)

select * from final
