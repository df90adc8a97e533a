{{ config(tags=['microstructure']) }}

{#- The book as the loader rebuilt it after each diff (market_warehouse/loaders/book.py), typed. -#}

with

source_states as (

    select * from {{ mwh_microstructure_source('book_states') }}

)

select
    cast(ts as timestamp with time zone) as ts,
    cast(symbol as varchar) as symbol,
    cast(exchange as varchar) as exchange,
    cast(update_id as bigint) as update_id,
    cast(synced_update_id as bigint) as synced_update_id,
    cast(best_bid as double precision) as best_bid,
    cast(best_bid_qty as double precision) as best_bid_qty,
    cast(best_ask as double precision) as best_ask,
    cast(best_ask_qty as double precision) as best_ask_qty,
    cast(bid_levels as varchar) as bid_levels,
    cast(ask_levels as varchar) as ask_levels,
    cast(bid_depth_10bps as double precision) as bid_depth_10bps,
    cast(ask_depth_10bps as double precision) as ask_depth_10bps,
    cast(bid_depth_50bps as double precision) as bid_depth_50bps,
    cast(ask_depth_50bps as double precision) as ask_depth_50bps
from source_states
