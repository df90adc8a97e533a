{#
    What agents did over time: per agent, UTC day and action, how often it was chosen, its share of the
    day's decisions, its mean confidence and the reward it earned.
#}

with

decisions as (

    select * from {{ ref('stg_ml__agent_decisions') }}

),

daily as (

    select
        agent_id,
        {{ mwh_utc_date('decision_ts') }} as decision_date,
        action,
        count(*) as n_decisions,
        avg(confidence) as avg_confidence,
        sum(reward) as total_reward,
        avg(position_size) as avg_position_size
    from decisions
    group by agent_id, {{ mwh_utc_date('decision_ts') }}, action

),

final as (

    select
        agent_id,
        decision_date,
        action,
        n_decisions,
        cast(n_decisions as double precision)
        / sum(n_decisions) over (partition by agent_id, decision_date) as action_share,
        avg_confidence,
        total_reward,
        avg_position_size
    from daily

)

select * from final
