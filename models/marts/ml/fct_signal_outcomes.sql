{#
    One row per signal with its outcome. When the user supplied an exit (exit_price, and optionally
    realized_pnl) that is the outcome (`outcome_source` = 'supplied'); otherwise it is computed from
    bars (int_ml__signal_windows): the first bar of the holding window with an event decides `target`
    or `stop` (see the same-bar rule there); no event in a full window -> `expired` at the last bar's
    close; no event in a window not yet complete -> `open` (unresolved). HOLD signals are `no_trade`;
    a signal that matches no bar is `no_bars` (and listed in fct_ml_unmatched_records with the reason).

    A signal is matched as of its time (int_ml__record_bars): its signal bar is the bar in progress at
    signal_ts (a daily bar covers its UTC session date), else the next bar; the holding window is the
    bars after it. Prices are in the share units traded at signal time: window bars after a split are
    scaled into them (int_ml__signal_windows), so exit_price and pnl are per share held at signal time.

    P&L is per unit: BUY exit - entry, SELL entry - exit; return_pct = pnl / entry;
    realized_r_multiple = pnl / |entry - stop| (realized risk/reward); planned_risk_reward is the
    signal's own risk_reward or |target - entry| / |entry - stop|.
#}

with

signals as (

    select * from {{ ref('stg_ml__signals') }}

),

windows as (

    select * from {{ ref('int_ml__signal_windows') }}

),

record_bars as (

    select * from {{ ref('int_ml__record_bars') }}

),

ranked_events as (

    select
        *,
        row_number() over (
            partition by strategy, symbol, exchange, bar_interval, signal_ts
            order by bars_after_signal
        ) as event_rank
    from windows
    where bar_event is not null

),

first_events as (

    select * from ranked_events
    where event_rank = 1

),

window_ends as (

    select
        strategy,
        symbol,
        exchange,
        bar_interval,
        signal_ts,
        max(bars_after_signal) as bars_seen,
        {{ mwh_last('close', 'bars_after_signal') }} as last_close,
        max(bar_ts) as last_bar_ts
    from windows
    group by strategy, symbol, exchange, bar_interval, signal_ts

),

entry_bars as (

    {# The signal's own bar: with it loaded and no later bar yet, the signal is `open`, not `no_bars`. #}
    select
        signals.strategy,
        signals.symbol,
        signals.exchange,
        signals.bar_interval,
        signals.signal_ts,
        record_bars.bar_ts as signal_bar_ts
    from signals
    inner join record_bars
        on
            signals.symbol = record_bars.symbol
            and signals.exchange = record_bars.exchange
            and signals.bar_interval = record_bars.bar_interval
            and signals.signal_ts = record_bars.record_ts
    where record_bars.bar_index is not null

),

computed as (

    select
        signals.*,
        coalesce(signals.execution_price, signals.entry_price) as effective_entry_price,
        entry_bars.signal_ts is not null as has_bars,
        entry_bars.signal_bar_ts,
        first_events.bar_event,
        first_events.event_price,
        first_events.bar_ts as event_bar_ts,
        first_events.bars_after_signal as event_bars_after_signal,
        coalesce(first_events.is_ambiguous, false) as is_ambiguous,
        window_ends.bars_seen,
        window_ends.last_close,
        window_ends.last_bar_ts
    from signals
    left join first_events
        on
            signals.strategy = first_events.strategy
            and signals.symbol = first_events.symbol
            and signals.exchange = first_events.exchange
            and signals.bar_interval = first_events.bar_interval
            and signals.signal_ts = first_events.signal_ts
    left join window_ends
        on
            signals.strategy = window_ends.strategy
            and signals.symbol = window_ends.symbol
            and signals.exchange = window_ends.exchange
            and signals.bar_interval = window_ends.bar_interval
            and signals.signal_ts = window_ends.signal_ts
    left join entry_bars
        on
            signals.strategy = entry_bars.strategy
            and signals.symbol = entry_bars.symbol
            and signals.exchange = entry_bars.exchange
            and signals.bar_interval = entry_bars.bar_interval
            and signals.signal_ts = entry_bars.signal_ts

),

decided as (

    select
        *,
        case
            when signal_type = 'HOLD' then 'no_trade'
            when supplied_exit_price is not null then 'supplied'
            when bar_event is not null then bar_event
            when bars_seen >= max_holding_bars then 'expired'
            when has_bars then 'open'
            else 'no_bars'
        end as outcome,
        case
            when signal_type = 'HOLD' then null
            when supplied_exit_price is not null then 'supplied'
            else 'bars'
        end as outcome_source,
        case
            when signal_type = 'HOLD' then null
            when supplied_exit_price is not null then supplied_exit_price
            when bar_event is not null then event_price
            when bars_seen >= max_holding_bars then last_close
        end as exit_price,
        case
            when signal_type = 'HOLD' then null
            when supplied_exit_price is not null then supplied_exit_ts
            when bar_event is not null then event_bar_ts
            when bars_seen >= max_holding_bars then last_bar_ts
        end as exit_ts,
        case
            when supplied_exit_price is not null then null
            when bar_event is not null then event_bars_after_signal
            when bars_seen >= max_holding_bars then bars_seen
        end as bars_held
    from computed

),

priced as (

    select
        *,
        coalesce(
            case when outcome = 'supplied' then supplied_realized_pnl end,
            case
                when signal_type = 'BUY' then exit_price - effective_entry_price
                when signal_type = 'SELL' then effective_entry_price - exit_price
            end
        ) as pnl
    from decided

),

final as (

    select
        strategy,
        model_id,
        model_key,
        symbol,
        exchange,
        bar_interval,
        signal_ts,
        signal_bar_ts,
        signal_type,
        strength,
        confidence,
        status,
        effective_entry_price as entry_price,
        target_price,
        stop_price,
        max_holding_bars,
        expected_return,
        coalesce(
            risk_reward,
            {{ mwh_safe_divide(
                'abs(target_price - effective_entry_price)', 'abs(effective_entry_price - stop_price)'
            ) }}
        ) as planned_risk_reward,
        outcome,
        outcome_source,
        outcome in ('target', 'stop', 'expired', 'supplied') as is_closed,
        is_ambiguous,
        exit_price,
        exit_ts,
        bars_held,
        pnl,
        {{ mwh_safe_divide('pnl', 'effective_entry_price') }} as return_pct,
        {{ mwh_safe_divide('pnl', 'abs(effective_entry_price - stop_price)') }} as realized_r_multiple,
        pnl > 0 as is_win,
        latency_ms
    from priced

)

select * from final
