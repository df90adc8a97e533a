{{
    config(
        indexes=mwh_indexes([
            {'columns': ['bar_interval', 'symbol', 'exchange'], 'unique': true},
        ]),
    )
}}

{#
    The newest bar of every symbol and interval (1d with adjusted prices from fct_bars_1d, 1h from
    fct_bars_1h, 1m from fct_bars_1m): a table of one row per series, so "the latest bar of every
    symbol" reads a few thousand rows instead of the bar history (read.latest_bars reads it). Rebuilt
    every run at a cost bounded by the number of series, not the history: one index probe per symbol
    on PostgreSQL/TimescaleDB, one aggregate over the ts column on DuckDB (mwh_latest_rows).
#}

with

latest_1d as (

    {{ mwh_latest_rows(ref('fct_bars_1d'), ref('dim_symbols')) | indent(4) }}

),

latest_1h as (

    {{ mwh_latest_rows(ref('fct_bars_1h'), ref('dim_symbols')) | indent(4) }}

),

latest_1m as (

    {{ mwh_latest_rows(ref('fct_bars_1m'), ref('dim_symbols')) | indent(4) }}

),

final as (

    select
        symbol,
        exchange,
        cast('1d' as {{ mwh_varchar() }}) as bar_interval,
        ts,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        adj_close
    from latest_1d

    union all

    select
        symbol,
        exchange,
        cast('1h' as {{ mwh_varchar() }}) as bar_interval,
        ts,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        cast(null as {{ mwh_double() }}) as adj_close
    from latest_1h

    union all

    select
        symbol,
        exchange,
        cast('1m' as {{ mwh_varchar() }}) as bar_interval,
        ts,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        cast(null as {{ mwh_double() }}) as adj_close
    from latest_1m

)

select * from final
