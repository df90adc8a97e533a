{#
    Every BUY/SELL signal with the bars of its holding window: the var('ml_signal_max_holding_bars')
    (or the signal's own max_holding_bars) bars after the signal bar, numbered 1..n, each classified by
    what it did to the trade. The entry is the execution price when supplied, else the entry price.

    The rule per bar, for a BUY (a SELL mirrors it):
    - the bar opens at or below the stop          -> `stop` at the open (a gap through the stop);
    - else it opens at or above the target        -> `target` at the open (a gap through the target);
    - else its low reaches the stop and its high the target -> `stop` at the stop: a daily bar cannot
      tell which came first, and we assume the worse (conservative; `is_ambiguous` marks these);
    - else low <= stop                             -> `stop` at the stop;
    - else high >= target                          -> `target` at the target;
    - else nothing.
#}

with

signals as (

    select * from {{ ref('stg_ml__signals') }}
    where signal_type in ('BUY', 'SELL')

),

bars as (

    select * from {{ ref('int_ml__bars_indexed') }}

),

signal_bars as (

    select
        signals.strategy,
        signals.symbol,
        signals.exchange,
        signals.bar_interval,
        signals.signal_ts,
        signals.signal_type,
        coalesce(signals.execution_price, signals.entry_price) as entry_price,
        signals.target_price,
        signals.stop_price,
        signals.max_holding_bars,
        entry_bar.bar_index as entry_bar_index
    from signals
    inner join bars as entry_bar
        on
            signals.symbol = entry_bar.symbol
            and signals.exchange = entry_bar.exchange
            and signals.bar_interval = entry_bar.bar_interval
            and signals.signal_ts = entry_bar.ts

),

window_bars as (

    select
        signal_bars.*,
        bars.bar_index - signal_bars.entry_bar_index as bars_after_signal,
        bars.ts as bar_ts,
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        case
            when signal_bars.signal_type = 'BUY' then bars.open <= signal_bars.stop_price
            else bars.open >= signal_bars.stop_price
        end as opens_past_stop,
        case
            when signal_bars.signal_type = 'BUY' then bars.open >= signal_bars.target_price
            else bars.open <= signal_bars.target_price
        end as opens_past_target,
        case
            when signal_bars.signal_type = 'BUY' then bars.low <= signal_bars.stop_price
            else bars.high >= signal_bars.stop_price
        end as touches_stop,
        case
            when signal_bars.signal_type = 'BUY' then bars.high >= signal_bars.target_price
            else bars.low <= signal_bars.target_price
        end as touches_target
    from signal_bars
    inner join bars
        on
            signal_bars.symbol = bars.symbol
            and signal_bars.exchange = bars.exchange
            and signal_bars.bar_interval = bars.bar_interval
            and bars.bar_index > signal_bars.entry_bar_index
            and bars.bar_index <= signal_bars.entry_bar_index + signal_bars.max_holding_bars

),

classified as (

    select
        *,
        case
            when coalesce(opens_past_stop, false) then 'stop'
            when coalesce(opens_past_target, false) then 'target'
            when coalesce(touches_stop, false) then 'stop'
            when coalesce(touches_target, false) then 'target'
        end as bar_event,
        case
            when coalesce(opens_past_stop, false) then open
            when coalesce(opens_past_target, false) then open
            when coalesce(touches_stop, false) then stop_price
            when coalesce(touches_target, false) then target_price
        end as event_price,
        coalesce(
            not opens_past_stop and not opens_past_target and touches_stop and touches_target, false
        ) as is_ambiguous
    from window_bars

),

final as (

    select
        strategy,
        symbol,
        exchange,
        bar_interval,
        signal_ts,
        signal_type,
        entry_price,
        target_price,
        stop_price,
        max_holding_bars,
        bars_after_signal,
        bar_ts,
        open,
        high,
        low,
        close,
        bar_event,
        event_price,
        is_ambiguous
    from classified

)

select * from final
