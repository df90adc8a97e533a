{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
    )
}}

{#
    Daily bars from 1-minute bars. A day is the symbol's exchange session, not the UTC day: minute bars
    are assigned to the session of their exchange-local date and kept only inside its regular hours
    (open <= ts < close), so pre- and post-market minutes do not move the daily open or close. On the
    24/7 calendar (crypto) the session is the UTC day. Like every daily bar here, ts is the session date
    at 00:00 UTC.
#}

with

minute_bars as (

    {# in incremental runs: a session dated on or after the cut-off can open a day earlier in UTC #}
    select * from {{ ref('stg_market__bars') }}
    where
        bar_interval = '1m'
        {% if is_incremental() %}and ts >= {{ rollup_late_cutoff() }} - interval '1 day'{% endif %}

),

exchanges as (

    select * from {{ ref('exchanges') }}

),

sessions as (

    select * from {{ ref('int_trading_sessions') }}

),

bars_with_session_date as (

    select
        minute_bars.*,
        exchanges.calendar,
        case
            when exchanges.calendar = '24/7' then {{ mwh_utc_date('minute_bars.ts') }}
            else {{ mwh_local_date('minute_bars.ts', 'exchanges.timezone') }}
        end as session_date
    from minute_bars
    inner join exchanges
        on minute_bars.exchange = exchanges.exchange

),

bars_in_session as (

    select
        bars_with_session_date.*,
        coalesce(bars_with_session_date.vwap, (high + low + close) / 3) as bar_vwap
    from bars_with_session_date
    inner join sessions
        on
            bars_with_session_date.calendar = sessions.calendar
            and bars_with_session_date.session_date = sessions.session_date
            and bars_with_session_date.ts >= sessions.open_utc
            and bars_with_session_date.ts < sessions.close_utc
    {% if is_incremental() -%}
    where bars_with_session_date.session_date >= cast({{ rollup_late_cutoff() }} at time zone 'UTC' as date)
    {%- endif %}

),

aggregated as (

    select
        symbol,
        exchange,
        session_date,
        {{ mwh_first('open', 'ts') }} as open,
        max(high) as high,
        min(low) as low,
        {{ mwh_last('close', 'ts') }} as close,
        sum(volume) as volume,
        {{ mwh_safe_divide('sum(bar_vwap * volume)', 'sum(volume)') }} as vwap,
        sum(trade_count) as trade_count,
        sum(quote_volume) as quote_volume,
        count(*) as source_bar_count,
        min(ts) as first_source_ts,
        max(ts) as last_source_ts,
        max(loaded_at) as source_loaded_at
    from bars_in_session
    group by symbol, exchange, session_date

),

final as (

    select
        symbol,
        exchange,
        cast('1d' as varchar) as bar_interval,
        {{ mwh_date_to_utc_ts('session_date') }} as ts,
        session_date,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        quote_volume,
        source_bar_count,
        first_source_ts,
        last_source_ts,
        source_loaded_at
    from aggregated

)

select * from final
