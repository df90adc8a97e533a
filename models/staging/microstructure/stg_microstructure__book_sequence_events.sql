{{ config(tags=['microstructure']) }}

{#- The book rebuild's sequence events (synced, gap, no_straddle, unsynced), typed. -#}

with

source_events as (

    select * from {{ mwh_microstructure_source('book_sequence_events') }}

)

select
    cast(ts as timestamp with time zone) as ts,
    cast(symbol as varchar) as symbol,
    cast(exchange as varchar) as exchange,
    cast(update_id as bigint) as update_id,
    cast(event as varchar) as event,
    cast(expected_prev_update_id as bigint) as expected_prev_update_id,
    cast(prev_update_id as bigint) as prev_update_id,
    cast(diffs_affected as bigint) as diffs_affected,
    cast(detail as varchar) as detail,
    cast(source as varchar) as load_source,
    cast(run_id as varchar) as run_id
from source_events
