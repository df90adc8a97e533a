{#
    Missing bars of the last month of data, per symbol and interval, with consecutive sessions
    collapsed into one gap (gaps-and-islands over the calendar's session numbers). "Last month" is
    counted back from the newest gap-checked data, not from today, so it also works on historical
    datasets; replace `reference_ts` with current_timestamp for a live warehouse.
#}

with

gaps as (

    select * from {{ ref('fct_bar_gaps') }}

),

symbols as (

    select * from {{ ref('dim_symbols') }}

),

sessions as (

    select
        calendar,
        session_date,
        row_number() over (partition by calendar order by session_date) as session_number
    from {{ ref('dim_trading_sessions') }}

),

reference_ts as (

    select max(last_bar_ts) as reference_ts from symbols

),

recent_gaps as (

    select
        gaps.*,
        symbols.calendar
    from gaps
    inner join symbols
        on
            gaps.symbol = symbols.symbol
            and gaps.exchange = symbols.exchange
    cross join reference_ts
    where gaps.session_date >= cast(reference_ts.reference_ts - interval '31 days' as date)

),

numbered as (

    select
        recent_gaps.*,
        sessions.session_number
        - row_number() over (
            partition by recent_gaps.symbol, recent_gaps.exchange, recent_gaps.bar_interval
            order by recent_gaps.session_date
        ) as island
    from recent_gaps
    inner join sessions
        on
            recent_gaps.calendar = sessions.calendar
            and recent_gaps.session_date = sessions.session_date

),

final as (

    select
        symbol,
        exchange,
        bar_interval,
        min(session_date) as first_session,
        max(session_date) as last_session,
        count(*) as sessions_affected,
        sum(missing_bars) as missing_bars,
        min(first_missing_ts) as first_missing_ts,
        max(last_missing_ts) as last_missing_ts
    from numbered
    group by symbol, exchange, bar_interval, island

)

select * from final
order by symbol, bar_interval, first_session
