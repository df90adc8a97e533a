{{ config(tags=['microstructure']) }}

{#- The book on a fixed grid with mid, spread and depth (see the yml). -#}

with

sampled as (

    select * from {{ ref('int_microstructure__book_states_sampled') }}

)

select
    snapshot_ts,
    symbol,
    exchange,
    snapshot_interval_ms,
    book_ts,
    update_id,
    synced_update_id,
    best_bid,
    best_bid_qty,
    best_ask,
    best_ask_qty,
    (best_bid + best_ask) / 2 as mid_price,
    best_ask - best_bid as spread,
    (best_ask - best_bid) / ((best_bid + best_ask) / 2) * 10000 as spread_bps,
    bid_levels,
    ask_levels,
    bid_depth_10bps,
    ask_depth_10bps,
    bid_depth_50bps,
    ask_depth_50bps
from sampled
where best_bid is not null and best_ask is not null
