{#
    Missing bars of the last month of data, per symbol and interval: fct_bar_gaps' ranges that end
    within it (a range is already a run of consecutive missing bars, across sessions). "Last month" is
    counted back from the newest loaded bar, not from today, so it also works on historical datasets;
    replace `reference_ts` with current_timestamp for a live warehouse.
#}

with

gaps as (

    select * from {{ ref('fct_bar_gaps') }}

),

symbols as (

    select * from {{ ref('dim_symbols') }}

),

reference_ts as (

    select max(last_bar_ts) as reference_ts from symbols

),

final as (

    select
        gaps.symbol,
        gaps.exchange,
        gaps.bar_interval,
        gaps.first_session_date as first_session,
        gaps.last_session_date as last_session,
        gaps.missing_sessions as sessions_affected,
        gaps.missing_bars,
        gaps.first_missing_ts,
        gaps.last_missing_ts
    from gaps
    cross join reference_ts
    where gaps.last_missing_ts >= reference_ts.reference_ts - interval '31 days'

)

select * from final
order by symbol, bar_interval, first_session
