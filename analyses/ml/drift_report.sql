{#
    Drift report: for every active model version, the last rolling accuracy against its threshold, the
    most drifted features (PSI), the alerts and whether a retrain is already queued.
    Compile with `dbt compile --select drift_report`; run the SQL in target/compiled/.
#}

with

registry as (

    select * from {{ ref('stg_ml__model_registry') }}
    where is_active

),

performance_by_recency as (

    select
        *,
        row_number() over (partition by model_id order by prediction_date desc) as recency
    from {{ ref('fct_model_performance_drift') }}

),

latest_performance as (

    select * from performance_by_recency
    where recency = 1

),

worst_features as (

    select
        model_id,
        max(psi) as max_psi,
        string_agg(
            feature_name || ' ' || {{ mwh_fmt('psi', 3) }}, ', ' order by psi desc
        ) filter (where drift_level in ('moderate', 'significant')) as drifted_features
    from {{ ref('fct_feature_drift') }}
    group by model_id

),

candidates as (

    select * from {{ ref('fct_model_retrain_candidates') }}

),

queue as (

    select * from {{ ref('stg_ml__retrain_queue') }}

),

requests_by_recency as (

    select
        *,
        row_number() over (partition by model_name order by inserted_at desc) as recency
    from queue

),

last_request as (

    select * from requests_by_recency
    where recency = 1

)

select
    registry.model_name,
    registry.model_id,
    latest_performance.prediction_date as as_of,
    {{ mwh_round('latest_performance.rolling_accuracy', 4) }} as rolling_accuracy,
    {{ mwh_round('latest_performance.drift_threshold', 4) }} as accuracy_threshold,
    latest_performance.rolling_n_resolved,
    coalesce(latest_performance.is_drifting, false) as accuracy_drifting,
    {{ mwh_round('worst_features.max_psi', 4) }} as max_psi,
    worst_features.drifted_features,
    candidates.priority as retrain_priority,
    candidates.reason as retrain_reason,
    last_request.status as last_request_status,
    last_request.inserted_at as last_request_at
from registry
left join latest_performance
    on registry.model_id = latest_performance.model_id
left join worst_features
    on registry.model_id = worst_features.model_id
left join candidates
    on registry.model_name = candidates.model_name
left join last_request
    on registry.model_name = last_request.model_name
order by candidates.priority nulls last, registry.model_name
