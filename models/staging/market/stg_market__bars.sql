{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'bar_interval', 'ts'],
        on_schema_change='fail',
        indexes=mwh_indexes([
            {'columns': ['symbol', 'exchange', 'bar_interval', 'ts'], 'unique': true},
            {'columns': ['bar_interval', 'ts']},
            {'columns': ['loaded_at']},
            {'columns': ['run_id', 'load_source']},
        ]),
        meta={'bar_interval_column': 'bar_interval'},
    )
}}

{#
    Bars as loaded, typed and deduplicated: one row per (symbol, exchange, interval, ts). Should the raw
    table ever hold a bar twice (an append-only sink, a replayed file), the newest load wins. Rows that
    break the OHLC invariants are excluded here: the loader has already put them in raw.quarantine, so
    nothing is lost, and no downstream model has to guard against them.

    Incremental rather than a view (the raw table is the largest one). A run takes what changed since
    the previous one, by a high-water mark, not a wall-clock window: the table's load mark
    (mwh_load_mark: the newest `loaded_at` it holds, moved on to the finish of every load entry of
    raw.loader_runs whose rows it holds), then the raw rows loaded after it plus the rows of every load
    entry that finished after it (one that started before the mark but committed after it). Their keys
    are replaced, so a reloaded or corrected bar replaces the old one. A backfill is thus processed
    once, by the build after it, and the next build takes only what is new again. Every downstream model reads a deduplicated table with
    statistics and indexes instead of re-sorting raw.bars.

    meta.bar_interval_column: a row here is a row of raw.bars of the same interval, so a load of some
    intervals changes only those intervals' rows; a plain `mwh build` then leaves out the models that read
    other intervals only (mwh_read_interval, market_warehouse/build_state.py).
#}

with

source_bars as (

    select * from {{ source('market', 'bars') }}
    {% if is_incremental() -%}
    {#- the mark (on PostgreSQL read at compile time, a literal: mwh_loaded_since's standalone_mark) #}
    where {{ mwh_loaded_since(
        'coalesce(' ~ mwh_load_mark(this) ~ ', ' ~ mwh_min_ts() ~ ')', load_source='source', standalone_mark=true
    ) }}
    {%- endif %}

),

typed as (

    select
        cast(symbol as {{ mwh_varchar() }}) as symbol,
        cast(exchange as {{ mwh_varchar() }}) as exchange,
        -- "interval" is a reserved word in PostgreSQL
        cast({{ adapter.quote('interval') }} as {{ mwh_varchar() }}) as bar_interval,  -- noqa: RF06
        cast(ts as {{ mwh_timestamptz() }}) as ts,
        cast(open as {{ mwh_double() }}) as open,
        cast(high as {{ mwh_double() }}) as high,
        cast(low as {{ mwh_double() }}) as low,
        cast(close as {{ mwh_double() }}) as close,
        cast(volume as {{ mwh_double() }}) as volume,
        cast(adj_close as {{ mwh_double() }}) as vendor_adj_close,
        cast(vwap as {{ mwh_double() }}) as vwap,
        cast(trade_count as bigint) as trade_count,
        cast(quote_volume as {{ mwh_double() }}) as quote_volume,
        cast(taker_buy_volume as {{ mwh_double() }}) as taker_buy_volume,
        cast(taker_buy_quote_volume as {{ mwh_double() }}) as taker_buy_quote_volume,
        cast(source as {{ mwh_varchar() }}) as load_source,
        cast(run_id as {{ mwh_varchar() }}) as run_id,
        cast(loaded_at as {{ mwh_timestamptz() }}) as loaded_at
    from source_bars

),

{# The newest load per key (macros/cross_db.sql: distinct on for PostgreSQL, a row_number() filter on
    DuckDB, which stays inside a bounded memory_limit at 5M bars). #}
{%- set bar_key = ['symbol', 'exchange', 'bar_interval', 'ts'] %}
newest_load as (

    {{ mwh_newest_per_key('typed', bar_key, ['loaded_at desc', 'run_id desc']) | indent(4) }}

),

valid as (

    select * from newest_load
    where {{ mwh_bar_is_valid() }}

),

final as (

    select
        symbol,
        exchange,
        bar_interval,
        ts,
        open,
        high,
        low,
        close,
        volume,
        vendor_adj_close,
        vwap,
        trade_count,
        quote_volume,
        taker_buy_volume,
        taker_buy_quote_volume,
        load_source,
        run_id,
        loaded_at
    from valid

)

select * from final
