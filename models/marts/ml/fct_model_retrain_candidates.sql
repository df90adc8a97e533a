{#
    Models whose active version has drift alerts: what `mwh retrain enqueue` puts on the queue (once;
    a model with a pending or processing request is not enqueued again, see market_warehouse/ml/queue.py).
    Priority (1 = most urgent): 1 when performance and features both drift, 2 performance only,
    3 features only. `open_request_id` shows a request already waiting.
#}

with

alerts as (

    select * from {{ ref('fct_model_drift_alerts') }}
    where is_active

),

queue as (

    select * from {{ ref('stg_ml__retrain_queue') }}
    where status in ('pending', 'processing')

),

per_model as (

    select
        model_name,
        model_id,
        count(*) as n_alerts,
        max({{ mwh_int("alert_type = 'performance'") }}) as has_performance_drift,
        max({{ mwh_int("alert_type = 'feature'") }}) as has_feature_drift,
        max(alert_date) as latest_alert_date,
        string_agg(reason, '; ' order by alert_type desc, alert_subject asc) as reason
    from alerts
    group by model_name, model_id

),

final as (

    select
        per_model.model_name,
        per_model.model_id,
        per_model.n_alerts,
        per_model.has_performance_drift = 1 as has_performance_drift,
        per_model.has_feature_drift = 1 as has_feature_drift,
        per_model.latest_alert_date,
        case
            when per_model.has_performance_drift = 1 and per_model.has_feature_drift = 1 then 1
            when per_model.has_performance_drift = 1 then 2
            else 3
        end as priority,
        per_model.reason,
        queue.request_id as open_request_id
    from per_model
    left join queue
        on per_model.model_name = queue.model_name

)

select * from final
