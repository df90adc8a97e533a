{{
    config(
        tags=['risk'],
        pre_hook="{{ mwh_session_settings() }}",
        indexes=mwh_indexes([{'columns': ['series_type', 'series_name', 'exchange', 'return_index']}]),
    )
}}

{#
    Daily returns of every series the risk marts measure, as one set: each symbol of fct_bars_1d
    (series_type 'symbol') and each portfolio of seeds/risk_portfolio_weights.csv ('portfolio', exchange
    'ALL').
    - A symbol's return is its simple adjusted close-to-close return, adj_close / previous adj_close - 1,
      over exactly one session of its exchange's calendar: a return spanning missing sessions (a data gap)
      is left out rather than counted as one day's move. Symbols whose calendar has no sessions in
      dim_trading_sessions use consecutive bars.
    - A portfolio's return is sum(weight * constituent return) on the sessions where every constituent has
      a return (constant weights, rebalanced daily).
    return_index numbers each series' returns 1, 2, ... in time order (the rolling VaR windows count them).
#}

with

bars as (

    select
        symbol,
        exchange,
        session_date,
        adj_close
    from {{ ref('fct_bars_1d') }}
    where adj_close > 0

),

exchanges as (

    select
        exchange,
        calendar
    from {{ ref('exchanges') }}

),

sessions as (

    select
        calendar,
        session_date,
        row_number() over (partition by calendar order by session_date) as session_number
    from {{ ref('dim_trading_sessions') }}

),

numbered as (

    select
        bars.symbol,
        bars.exchange,
        bars.session_date,
        bars.adj_close,
        sessions.session_number,
        lag(bars.adj_close) over (
            partition by bars.symbol, bars.exchange order by bars.session_date
        ) as previous_adj_close,
        lag(sessions.session_number) over (
            partition by bars.symbol, bars.exchange order by bars.session_date
        ) as previous_session_number,
        lag(bars.session_date) over (
            partition by bars.symbol, bars.exchange order by bars.session_date
        ) as previous_session_date
    from bars
    left join exchanges
        on bars.exchange = exchanges.exchange
    left join sessions
        on
            exchanges.calendar = sessions.calendar
            and bars.session_date = sessions.session_date

),

symbol_returns as (

    select
        symbol,
        exchange,
        session_date,
        previous_session_date,
        adj_close / previous_adj_close - 1 as daily_return
    from numbered
    where
        previous_adj_close is not null
        and (
            session_number is null
            or previous_session_number is null
            or session_number = previous_session_number + 1
        )

),

weights as (

    select
        portfolio,
        symbol,
        exchange,
        weight,
        count(*) over (partition by portfolio) as constituent_count
    from {{ ref('risk_portfolio_weights') }}

),

portfolio_returns as (

    select
        weights.portfolio,
        symbol_returns.session_date,
        max(symbol_returns.previous_session_date) as previous_session_date,
        sum(weights.weight * symbol_returns.daily_return) as daily_return,
        count(*) as constituents_with_return,
        max(weights.constituent_count) as constituent_count
    from weights
    inner join symbol_returns
        on
            weights.symbol = symbol_returns.symbol
            and weights.exchange = symbol_returns.exchange
    group by weights.portfolio, symbol_returns.session_date

),

unioned as (

    select
        'symbol' as series_type,
        symbol as series_name,
        exchange,
        session_date,
        previous_session_date,
        daily_return
    from symbol_returns
    union all
    select
        'portfolio' as series_type,
        portfolio as series_name,
        'ALL' as exchange,
        session_date,
        previous_session_date,
        daily_return
    from portfolio_returns
    where constituents_with_return = constituent_count

),

final as (

    select
        series_type,
        series_name,
        exchange,
        session_date,
        previous_session_date,
        daily_return,
        row_number() over (
            partition by series_type, series_name, exchange order by session_date
        ) as return_index
    from unioned

)

select * from final
