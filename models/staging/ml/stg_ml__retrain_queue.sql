{#
    The retrain queue as it stands (written by market_warehouse/ml/queue.py, one row per request). A processing
    request whose lease has passed is reported as `expired`: its worker is presumed dead and the next
    claim may take it.
#}

with

source_queue as (

    select * from {{ mwh_ml_source('ml_retrain_queue') }}

),

final as (

    select
        cast(request_id as varchar) as request_id,
        cast(model_name as varchar) as model_name,
        cast(model_id as varchar) as model_id,
        cast(reason as varchar) as reason,
        cast(priority as integer) as priority,
        cast(status as varchar) as status,
        case
            when status = 'processing' and lease_expires_at < current_timestamp then 'expired'
            else status
        end as effective_status,
        cast(requested_by as varchar) as requested_by,
        cast(inserted_at as timestamp with time zone) as inserted_at,
        cast(started_at as timestamp with time zone) as started_at,
        cast(completed_at as timestamp with time zone) as completed_at,
        cast(claimed_by as varchar) as claimed_by,
        cast(lease_expires_at as timestamp with time zone) as lease_expires_at,
        cast(attempts as integer) as attempts,
        cast(error as varchar) as error
    from source_queue

)

select * from final
