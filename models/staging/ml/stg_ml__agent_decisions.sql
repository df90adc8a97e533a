{# Reinforcement-learning agent decisions, typed; one row per (agent_id, symbol, exchange, decision_ts). #}

with

source_decisions as (

    select * from {{ mwh_ml_source('ml_agent_decisions') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by agent_id, symbol, exchange, decision_ts
            order by loaded_at desc, run_id desc
        ) as load_rank
    from source_decisions

),

final as (

    select
        cast(agent_id as varchar) as agent_id,
        cast(episode as bigint) as episode,
        cast(symbol as varchar) as symbol,
        cast(exchange as varchar) as exchange,
        cast(decision_ts as timestamp with time zone) as decision_ts,
        {{ mwh_json_text('state') }} as state_json,
        cast(upper(action) as varchar) as action,
        cast(confidence as double precision) as confidence,
        cast(reward as double precision) as reward,
        {{ mwh_json_text('next_state') }} as next_state_json,
        cast(position_size as double precision) as position_size,
        cast(entry_price as double precision) as entry_price,
        cast(stop_price as double precision) as stop_price,
        cast(take_profit as double precision) as take_profit,
        cast(model_version as varchar) as model_version,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from ranked
    where load_rank = 1

)

select * from final
