{# Reinforcement-learning episode summaries, typed; one row per (agent_id, episode). #}

with

source_episodes as (

    select * from {{ mwh_ml_source('ml_agent_episodes') }}

),

ranked as (

    select
        *,
        row_number() over (partition by agent_id, episode order by loaded_at desc, run_id desc) as load_rank
    from source_episodes

),

final as (

    select
        cast(agent_id as varchar) as agent_id,
        cast(episode as bigint) as episode,
        cast(started_at as timestamp with time zone) as started_at,
        cast(ended_at as timestamp with time zone) as ended_at,
        cast(total_reward as double precision) as total_reward,
        cast(episode_length as bigint) as episode_length,
        cast(loss as double precision) as loss,
        cast(portfolio_value as double precision) as portfolio_value,
        cast(sharpe as double precision) as sharpe,
        cast(model_version as varchar) as model_version,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from ranked
    where load_rank = 1

)

select * from final
