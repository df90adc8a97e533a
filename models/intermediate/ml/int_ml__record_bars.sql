{#
    Every time a signal or a prediction is stamped with, matched to its bar as of that time: the first
    bar of its series whose interval ends after the time, i.e. the bar in progress at that time, or the
    next bar to open when none is (overnight, a weekend, a holiday). A daily bar covers its UTC session
    date, so any time on that date (the close in local time, 16:00-05:00 = 21:00 UTC) matches that day's
    bar; an intraday bar covers [open time, open time + interval). A time with no bar at or after it, or
    on a series with no bars, gets a null bar_index (fct_ml_unmatched_records says why).

    Done as one ordered stream per series (bars by their end, the record times among them) so the
    match is a running count, not a range join: the bars ended at or before t, plus one.
#}

with

predictions as (

    select * from {{ ref('stg_ml__predictions') }}

),

signals as (

    select * from {{ ref('stg_ml__signals') }}

),

bars as (

    select * from {{ ref('int_ml__bars_indexed') }}

),

record_times as (

    select
        symbol,
        exchange,
        bar_interval,
        bar_ts as record_ts
    from predictions
    union
    select
        symbol,
        exchange,
        bar_interval,
        signal_ts as record_ts
    from signals

),

stream as (

    select
        symbol,
        exchange,
        bar_interval,
        bar_end_ts as stream_ts,
        0 as stream_kind,
        cast(null as timestamp with time zone) as record_ts
    from bars
    union all
    select
        symbol,
        exchange,
        bar_interval,
        record_ts as stream_ts,
        1 as stream_kind,
        record_ts
    from record_times

),

counted as (

    select
        *,
        sum(1 - stream_kind) over (
            partition by symbol, exchange, bar_interval
            order by stream_ts, stream_kind
            rows between unbounded preceding and current row
        ) as bars_ended
    from stream

),

final as (

    select
        counted.symbol,
        counted.exchange,
        counted.bar_interval,
        counted.record_ts,
        bars.bar_index,
        bars.ts as bar_ts,
        bars.split_factor
    from counted
    left join bars
        on
            counted.symbol = bars.symbol
            and counted.exchange = bars.exchange
            and counted.bar_interval = bars.bar_interval
            and bars.bar_index = counted.bars_ended + 1
    where counted.stream_kind = 1

)

select * from final
