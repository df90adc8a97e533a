{#
    Signals, typed; one row per (strategy, symbol, exchange, bar_interval, signal_ts), newest load wins
    (a status update is a reload of the same signal). `model_key` is model_id or '(none)', so signal
    marts can group by it without null keys.
#}

with

source_signals as (

    select * from {{ mwh_ml_source('ml_signals') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by strategy, symbol, exchange, bar_interval, signal_ts
            order by loaded_at desc, run_id desc
        ) as load_rank
    from source_signals

),

final as (

    select
        cast(strategy as varchar) as strategy,
        cast(model_id as varchar) as model_id,
        cast(coalesce(model_id, '(none)') as varchar) as model_key,
        cast(symbol as varchar) as symbol,
        cast(exchange as varchar) as exchange,
        cast(bar_interval as varchar) as bar_interval,
        cast(signal_ts as timestamp with time zone) as signal_ts,
        cast(signal_type as varchar) as signal_type,
        cast(strength as double precision) as strength,
        cast(confidence as double precision) as confidence,
        cast(entry_price as double precision) as entry_price,
        cast(target_price as double precision) as target_price,
        cast(stop_price as double precision) as stop_price,
        cast(expected_return as double precision) as expected_return,
        cast(risk_reward as double precision) as risk_reward,
        cast(coalesce(max_holding_bars, {{ var('ml_signal_max_holding_bars') }}) as integer) as max_holding_bars,
        cast(status as varchar) as status,
        cast(execution_price as double precision) as execution_price,
        cast(exit_price as double precision) as supplied_exit_price,
        cast(exit_ts as timestamp with time zone) as supplied_exit_ts,
        cast(realized_pnl as double precision) as supplied_realized_pnl,
        cast(latency_ms as double precision) as latency_ms,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from ranked
    where load_rank = 1

)

select * from final
