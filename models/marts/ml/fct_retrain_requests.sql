{#
    The retrain queue's requests with how long they waited and took: wait = inserted -> last claim,
    processing = last claim -> completion. `effective_status` shows a processing request whose lease
    has passed as `expired` (its worker is presumed dead; the next claim takes it).
#}

with

queue as (

    select * from {{ ref('stg_ml__retrain_queue') }}

),

final as (

    select
        request_id,
        model_name,
        model_id,
        reason,
        priority,
        status,
        effective_status,
        requested_by,
        claimed_by,
        attempts,
        inserted_at,
        started_at,
        completed_at,
        lease_expires_at,
        {{ mwh_as_double(mwh_seconds_between('inserted_at', 'started_at')) }} as wait_seconds,
        {{ mwh_as_double(mwh_seconds_between('started_at', 'completed_at')) }} as processing_seconds,
        error
    from queue

)

select * from final
