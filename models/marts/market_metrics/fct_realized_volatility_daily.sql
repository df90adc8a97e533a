{{
    config(
        tags=['market_metrics'],
        pre_hook="{{ mwh_session_settings() }}",
        indexes=mwh_indexes([{'columns': ['symbol', 'exchange', 'session_date']}]),
    )
}}

{#
    Realized volatility per symbol and UTC day from 1-minute bars. Convention:
    - r_t = ln(close_t / close_{t-1}) for each 1-minute bar t whose previous bar opened exactly one
      minute earlier (no return spans a missing minute, an overnight close or a data gap);
    - realized variance RV = sum of r_t^2 over the bars t of the UTC day (no mean subtracted);
    - realized_volatility = sqrt(RV), the day's volatility (not scaled for missing minutes);
    - annualized = sqrt(RV * D), D = 365 days a year for 24/7 calendars (crypto), else
      `realized_vol_days_per_year` (252 trading days).
    Days with no return have no row.
#}

with

minute_bars as (

    select
        symbol,
        exchange,
        ts,
        close,
        lag(ts) over (partition by symbol, exchange order by ts) as previous_ts,
        lag(close) over (partition by symbol, exchange order by ts) as previous_close
    from {{ ref('stg_market__bars') }}
    where bar_interval = {{ mwh_read_interval('1m') }}

),

minute_returns as (

    select
        symbol,
        exchange,
        {{ mwh_utc_date('ts') }} as session_date,
        ln(close / previous_close) as log_return
    from minute_bars
    where previous_ts = ts - interval '1 minute'

),

exchanges as (

    select
        exchange,
        calendar
    from {{ ref('exchanges') }}

),

daily as (

    select
        symbol,
        exchange,
        session_date,
        count(*) as return_count,
        sum(log_return * log_return) as realized_variance,
        sum(log_return) as total_log_return
    from minute_returns
    group by symbol, exchange, session_date

),

final as (

    select
        daily.symbol,
        daily.exchange,
        daily.session_date,
        cast(daily.return_count as integer) as return_count,
        daily.total_log_return,
        daily.realized_variance,
        sqrt(daily.realized_variance) as realized_volatility,
        case when exchanges.calendar = '24/7' then 365 else {{ var('realized_vol_days_per_year', 252) }} end
            as days_per_year,
        sqrt(
            daily.realized_variance
            * case when exchanges.calendar = '24/7' then 365 else {{ var('realized_vol_days_per_year', 252) }} end
        ) as realized_volatility_annualized
    from daily
    left join exchanges
        on daily.exchange = exchanges.exchange

)

select * from final
