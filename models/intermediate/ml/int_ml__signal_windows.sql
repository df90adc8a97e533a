{#
    Every BUY/SELL signal with the bars of its holding window: the var('ml_signal_max_holding_bars')
    (or the signal's own max_holding_bars) bars after the signal bar, numbered 1..n, each classified by
    what it did to the trade. The entry is the execution price when supplied, else the entry price.
    The signal bar is the bar matched to signal_ts as of that time (int_ml__record_bars).

    Entry, target and stop are prices traded at signal time. A window bar after a split is compared in
    those share units: its prices are scaled by its split factor over the signal bar's
    (int_ml__bars_indexed), so a 4:1 split inside the window changes nothing.

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

record_bars as (

    select * from {{ ref('int_ml__record_bars') }}

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
        entry_bar.bar_index as entry_bar_index,
        entry_bar.split_factor as entry_split_factor
    from signals
    inner join record_bars as entry_bar
        on
            signals.symbol = entry_bar.symbol
            and signals.exchange = entry_bar.exchange
            and signals.bar_interval = entry_bar.bar_interval
            and signals.signal_ts = entry_bar.record_ts

),

scaled_bars as (

    select
        signal_bars.*,
        bars.bar_index - signal_bars.entry_bar_index as bars_after_signal,
        bars.ts as bar_ts,
        coalesce(bars.split_factor / signal_bars.entry_split_factor, 1) as price_scale,
        bars.open * coalesce(bars.split_factor / signal_bars.entry_split_factor, 1) as open,
        bars.high * coalesce(bars.split_factor / signal_bars.entry_split_factor, 1) as high,
        bars.low * coalesce(bars.split_factor / signal_bars.entry_split_factor, 1) as low,
        bars.close * coalesce(bars.split_factor / signal_bars.entry_split_factor, 1) as close
    from signal_bars
    inner join bars
        on
            signal_bars.symbol = bars.symbol
            and signal_bars.exchange = bars.exchange
            and signal_bars.bar_interval = bars.bar_interval
            and signal_bars.entry_bar_index < bars.bar_index
            and bars.bar_index <= signal_bars.entry_bar_index + signal_bars.max_holding_bars
            and signal_bars.entry_bar_index is not null

),

window_bars as (

    select
        scaled_bars.*,
        case
            when scaled_bars.signal_type = 'BUY' then scaled_bars.open <= scaled_bars.stop_price
            else scaled_bars.open >= scaled_bars.stop_price
        end as opens_past_stop,
        case
            when scaled_bars.signal_type = 'BUY' then scaled_bars.open >= scaled_bars.target_price
            else scaled_bars.open <= scaled_bars.target_price
        end as opens_past_target,
        case
            when scaled_bars.signal_type = 'BUY' then scaled_bars.low <= scaled_bars.stop_price
            else scaled_bars.high >= scaled_bars.stop_price
        end as touches_stop,
        case
            when scaled_bars.signal_type = 'BUY' then scaled_bars.high >= scaled_bars.target_price
            else scaled_bars.low <= scaled_bars.target_price
        end as touches_target
    from scaled_bars

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
        price_scale,
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
