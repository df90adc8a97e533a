{{ config(tags=['microstructure']) }}

{#- The last book state in each grid step (var book_snapshot_interval_ms: 100 or 1000 ms). -#}

{%- set step = mwh_book_snapshot_interval_ms() %}

with

states as (

    select
        *,
        {{ mwh_time_bucket(step ~ ' milliseconds', 'ts') }} as snapshot_ts
    from {{ ref('stg_microstructure__book_states') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by symbol, exchange, snapshot_ts
            order by ts desc, update_id desc
        ) as newest_first
    from states

)

select
    snapshot_ts,
    symbol,
    exchange,
    {{ step }} as snapshot_interval_ms,
    ts as book_ts,
    update_id,
    synced_update_id,
    best_bid,
    best_bid_qty,
    best_ask,
    best_ask_qty,
    bid_levels,
    ask_levels,
    bid_depth_10bps,
    ask_depth_10bps,
    bid_depth_50bps,
    ask_depth_50bps
from ranked
where newest_first = 1
