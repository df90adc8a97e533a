{{ config(tags=['microstructure']) }}

{#- The exchange's own best bid and ask (bookTicker), typed. -#}

with

source_tickers as (

    select * from {{ mwh_microstructure_source('book_tickers') }}

)

select
    cast(ts as timestamp with time zone) as ts,
    cast(symbol as varchar) as symbol,
    cast(exchange as varchar) as exchange,
    cast(update_id as bigint) as update_id,
    cast(bid_price as double precision) as bid_price,
    cast(bid_qty as double precision) as bid_qty,
    cast(ask_price as double precision) as ask_price,
    cast(ask_qty as double precision) as ask_qty,
    cast(transaction_ts as timestamp with time zone) as transaction_ts,
    cast(received_at as timestamp with time zone) as received_at
from source_tickers
