{{ config(tags=['microstructure']) }}

{#- Trades as landed (raw.trades is unique on its key), typed, with the taker's side. -#}

with

source_trades as (

    select * from {{ mwh_microstructure_source('trades') }}

)

select
    cast(ts as timestamp with time zone) as ts,
    cast(symbol as varchar) as symbol,
    cast(exchange as varchar) as exchange,
    cast(trade_id as bigint) as trade_id,
    cast(price as double precision) as price,
    cast(quantity as double precision) as quantity,
    cast(price * quantity as double precision) as quote_quantity,
    is_buyer_maker,
    case
        when is_buyer_maker then 'sell'
        when not is_buyer_maker then 'buy'
    end as taker_side,
    cast(event_ts as timestamp with time zone) as event_ts,
    cast(received_at as timestamp with time zone) as received_at,
    cast(run_id as varchar) as run_id
from source_trades
