{#
    Learning curves of reinforcement-learning agents: one row per agent and episode, with the moving
    average of total reward over the last var('ml_agent_reward_window') episodes (fewer at the start)
    and the decisions logged during the episode.
#}

with

episodes as (

    select * from {{ ref('stg_ml__agent_episodes') }}

),

decisions as (

    select * from {{ ref('stg_ml__agent_decisions') }}

),

decision_counts as (

    select
        agent_id,
        episode,
        count(*) as n_decisions,
        sum(reward) as decision_reward
    from decisions
    where episode is not null
    group by agent_id, episode

),

final as (

    select
        episodes.agent_id,
        episodes.episode,
        episodes.started_at,
        episodes.ended_at,
        episodes.model_version,
        episodes.total_reward,
        avg(episodes.total_reward) over (
            partition by episodes.agent_id
            order by episodes.episode
            rows between {{ var('ml_agent_reward_window') - 1 }} preceding and current row
        ) as reward_moving_avg,
        episodes.total_reward - lag(episodes.total_reward) over (
            partition by episodes.agent_id order by episodes.episode
        ) as reward_change,
        episodes.episode_length,
        episodes.loss,
        episodes.portfolio_value,
        episodes.sharpe,
        coalesce(decision_counts.n_decisions, 0) as n_decisions,
        decision_counts.decision_reward
    from episodes
    left join decision_counts
        on
            episodes.agent_id = decision_counts.agent_id
            and episodes.episode = decision_counts.episode

)

select * from final
