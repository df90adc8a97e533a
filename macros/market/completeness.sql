{#
    Completeness of a bar series against its trading calendar: every (symbol, session) between a
    symbol's first and last bar where bars are missing, with how many and which.

    model          relation with symbol, exchange, ts (bar open time, UTC)
    bar_interval   1d, 1h, 15m, 5m or 1m
    interval_column optional column to filter on `bar_interval` (for a table of several intervals)

    Daily bars: one bar per session, stamped with the session date at 00:00 UTC.
    Intraday bars: every bucket of the interval (aligned to UTC midnight, as the rollups are) that
    overlaps the session's regular hours, so an XNYS 1h series expects 13:00..20:00 UTC buckets and a
    24/7 1m series all 1,440 minutes of every UTC day. Only buckets between the symbol's first and
    last bar are expected.
    Exchanges missing from the `exchanges` seed expect nothing (the relationships test on
    stg_market__bars flags them).
#}


{% macro mwh_missing_sessions(model, bar_interval, interval_column=none) -%}
{%- set widths = {'1m': '1 minute', '5m': '5 minutes', '15m': '15 minutes', '1h': '1 hour'} -%}
{%- set buckets_per_day = {'1m': 1440, '5m': 288, '15m': 96, '1h': 24} -%}

with

bars as (

    select
        symbol,
        exchange,
        ts
    from {{ model }}
    {% if interval_column is not none -%}
    where {{ interval_column }} = '{{ bar_interval }}'
    {%- endif %}

),

symbol_ranges as (

    select
        bars.symbol,
        bars.exchange,
        exchanges.calendar,
        min(bars.ts) as first_ts,
        max(bars.ts) as last_ts
    from bars
    inner join {{ ref('exchanges') }} as exchanges
        on bars.exchange = exchanges.exchange
    group by bars.symbol, bars.exchange, exchanges.calendar

),

sessions_in_range as (

    select
        symbol_ranges.symbol,
        symbol_ranges.exchange,
        symbol_ranges.first_ts,
        symbol_ranges.last_ts,
        sessions.session_date,
        sessions.open_utc,
        sessions.close_utc
    from symbol_ranges
    inner join {{ ref('int_market__trading_sessions') }} as sessions
        on
            symbol_ranges.calendar = sessions.calendar
            {% if bar_interval == '1d' -%}
            and sessions.session_date >= {{ mwh_utc_date('symbol_ranges.first_ts') }}
            and sessions.session_date <= {{ mwh_utc_date('symbol_ranges.last_ts') }}
            {%- else -%}
            and sessions.close_utc > symbol_ranges.first_ts
            and sessions.open_utc <= symbol_ranges.last_ts
            {%- endif %}

),

expected as (

    {% if bar_interval == '1d' -%}
    select
        symbol,
        exchange,
        session_date,
        {{ mwh_date_to_utc_ts('session_date') }} as expected_ts
    from sessions_in_range
    {%- else -%}
    select
        sessions_in_range.symbol,
        sessions_in_range.exchange,
        sessions_in_range.session_date,
        {{ mwh_time_bucket(widths[bar_interval], 'sessions_in_range.open_utc') }}
        + integer_series.n * interval '{{ widths[bar_interval] }}' as expected_ts,
        sessions_in_range.first_ts,
        sessions_in_range.last_ts,
        sessions_in_range.close_utc
    from sessions_in_range
    cross join {{ mwh_integer_series(0, buckets_per_day[bar_interval]) }}
    {%- endif %}

),

expected_in_range as (

    select
        symbol,
        exchange,
        session_date,
        expected_ts
    from expected
    {% if bar_interval != '1d' -%}
    where
        expected_ts < close_utc
        and expected_ts >= first_ts
        and expected_ts <= last_ts
    {%- endif %}

),

missing as (

    select
        expected_in_range.*
    from expected_in_range
    left join bars
        on
            expected_in_range.symbol = bars.symbol
            and expected_in_range.exchange = bars.exchange
            and expected_in_range.expected_ts = bars.ts
    where bars.ts is null

),

expected_counts as (

    select
        symbol,
        exchange,
        session_date,
        count(*) as expected_bars
    from expected_in_range
    group by symbol, exchange, session_date

),

missing_by_session as (

    select
        symbol,
        exchange,
        session_date,
        count(*) as missing_bars,
        min(expected_ts) as first_missing_ts,
        max(expected_ts) as last_missing_ts
    from missing
    group by symbol, exchange, session_date

)

select
    missing_by_session.symbol,
    missing_by_session.exchange,
    cast('{{ bar_interval }}' as varchar) as bar_interval,
    missing_by_session.session_date,
    missing_by_session.missing_bars,
    expected_counts.expected_bars,
    missing_by_session.first_missing_ts,
    missing_by_session.last_missing_ts
from missing_by_session
inner join expected_counts
    on
        missing_by_session.symbol = expected_counts.symbol
        and missing_by_session.exchange = expected_counts.exchange
        and missing_by_session.session_date = expected_counts.session_date

{%- endmacro %}
