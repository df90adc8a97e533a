{{
    config(
        tags=['market_metrics'],
        pre_hook="{{ mwh_session_settings() }}",
        indexes=mwh_indexes([{'columns': ['symbol', 'exchange', 'bucket_ts']}]),
    )
}}

{#
    Average spread and depth of the order book per symbol and UTC bucket (`book_liquidity_bucket`,
    '1 minute' by default), from the book snapshots mart (fct_book_snapshots, one row per grid step in
    which the book was valid). The snapshots are evenly spaced, so each average is the time-weighted
    average over the bucket's valid time; valid_share says how much of the bucket that is (steps after a
    sequence break, before the next snapshot, have no row and are not averaged).
#}

{%- set bucket = var('book_liquidity_bucket', '1 minute') -%}

with

snapshots as (

    select * from {{ ref('fct_book_snapshots') }}

),

bucketed as (

    select
        symbol,
        exchange,
        {{ mwh_time_bucket(bucket, 'snapshot_ts') }} as bucket_ts,
        max(snapshot_interval_ms) as snapshot_interval_ms,
        count(*) as snapshot_count,
        avg(mid_price) as avg_mid_price,
        avg(spread) as avg_spread,
        avg(spread_bps) as avg_spread_bps,
        min(spread_bps) as min_spread_bps,
        max(spread_bps) as max_spread_bps,
        avg(best_bid_qty) as avg_best_bid_qty,
        avg(best_ask_qty) as avg_best_ask_qty,
        avg(bid_depth_10bps) as avg_bid_depth_10bps,
        avg(ask_depth_10bps) as avg_ask_depth_10bps,
        avg(bid_depth_50bps) as avg_bid_depth_50bps,
        avg(ask_depth_50bps) as avg_ask_depth_50bps
    from snapshots
    group by symbol, exchange, {{ mwh_time_bucket(bucket, 'snapshot_ts') }}

),

final as (

    select
        symbol,
        exchange,
        bucket_ts,
        bucket_ts + interval '{{ bucket }}' as bucket_end_ts,
        cast(snapshot_count as integer) as snapshot_count,
        snapshot_interval_ms,
        {{ mwh_as_double('snapshot_count * snapshot_interval_ms') }}
        / (extract(epoch from (bucket_ts + interval '{{ bucket }}') - bucket_ts) * 1000) as valid_share,
        avg_mid_price,
        avg_spread,
        avg_spread_bps,
        min_spread_bps,
        max_spread_bps,
        avg_best_bid_qty,
        avg_best_ask_qty,
        avg_bid_depth_10bps,
        avg_ask_depth_10bps,
        avg_bid_depth_10bps + avg_ask_depth_10bps as avg_depth_10bps,
        avg_bid_depth_50bps,
        avg_ask_depth_50bps,
        avg_bid_depth_50bps + avg_ask_depth_50bps as avg_depth_50bps
    from bucketed

)

select * from final
