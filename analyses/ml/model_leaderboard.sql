{#
    Model leaderboard: every registered version with enough resolved predictions, best first.
    Classification versions rank by log loss (a proper score: it rewards calibrated probabilities, not
    only right guesses), then accuracy; regression versions by rank information coefficient, then RMSE.
    Columns beside the score say whether the version beats its training baseline, drifts, and is active.
    Compile with `dbt compile --select model_leaderboard`; run the SQL in target/compiled/.
#}

with

performance as (

    select * from {{ ref('fct_model_performance') }}

),

alerts as (

    select
        model_id,
        count(*) as n_alerts,
        string_agg(alert_type || ':' || alert_subject, ', ' order by alert_type, alert_subject) as alerts
    from {{ ref('fct_model_drift_alerts') }}
    group by model_id

),

eligible as (

    select * from performance
    where n_resolved >= 20

),

ranked as (

    select
        eligible.*,
        case
            when eligible.task = 'classification'
                then rank() over (partition by eligible.task order by eligible.log_loss asc, eligible.accuracy desc)
            else
                rank()
                    over (
                        partition by eligible.task
                        order by eligible.rank_information_coefficient desc, eligible.rmse asc
                    )
        end as task_rank
    from eligible

)

select
    ranked.task,
    ranked.task_rank,
    ranked.model_id,
    ranked.model_type,
    ranked.is_active,
    ranked.n_resolved,
    {{ mwh_round('ranked.accuracy', 4) }} as accuracy,
    {{ mwh_round('ranked.accuracy_vs_baseline', 4) }} as accuracy_vs_baseline,
    {{ mwh_round('ranked.log_loss', 4) }} as log_loss,
    {{ mwh_round('ranked.brier_score', 4) }} as brier_score,
    {{ mwh_round('ranked.rank_information_coefficient', 4) }} as rank_ic,
    {{ mwh_round('ranked.rmse', 6) }} as rmse,
    {{ mwh_round('ranked.avg_directional_return', 6) }} as avg_directional_return,
    ranked.latency_p95_ms,
    coalesce(alerts.n_alerts, 0) as n_drift_alerts,
    alerts.alerts
from ranked
left join alerts
    on ranked.model_id = alerts.model_id
order by ranked.task, ranked.task_rank, ranked.model_id
