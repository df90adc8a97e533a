{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
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
        bar_interval = {{ mwh_read_interval('1m') }}
        and ts >= {% if mwh_is_incremental() %}{{ mwh_rollup_late_cutoff() }} - interval '1 day'
        {%- else %}{{ mwh_min_ts() }}{% endif %}

),

exchanges as (

    select * from {{ ref('exchanges') }}

),

sessions as (

    select * from {{ ref('int_market__trading_sessions') }}

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
    {% if mwh_is_incremental() -%}
    where bars_with_session_date.session_date >= cast({{ mwh_rollup_late_cutoff() }} at time zone 'UTC' as date)
    {%- endif %}

),

aggregated as (

    select
        symbol,
        exchange,
        session_date,
        {{ mwh_bar_aggregates() }}
    from bars_in_session
    group by symbol, exchange, session_date

),

final as (

    select
        symbol,
        exchange,
        cast('1d' as {{ mwh_varchar() }}) as bar_interval,
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
