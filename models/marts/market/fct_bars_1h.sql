{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=mwh_indexes([
            {'columns': ['symbol', 'ts desc']},
            {'columns': ['ts']},
        ]),
        pre_hook="{{ mwh_forget_changed_intraday('1h', '1 hour') }}",
        post_hook="{{ mwh_keep_mark() }}",
    )
}}

{#
    Hourly bars: the vendor's own 1h bars where loaded, otherwise the hour rolled up from 1-minute bars
    (int_market__bars_rolled_up_1h, UTC-aligned). Raw prices: intraday series are not adjusted for
    corporate actions.

    Incremental (macros/market/incremental_tables.sql, mwh_forget_changed_intraday): per series with 1h
    or 1m bars loaded into staging since the table's load mark (its mark table, mwh_keep_mark), the
    pre-hook forgets its hours from the first changed one on (a 1m bar: its hour) and the run writes them
    again from staging and the rollup. Other series are not read. The same rows as a full refresh.
#}

with

unioned as (

    {{ mwh_vendor_or_rollup('1h', ref('int_market__bars_rolled_up_1h'),
        changed=mwh_changed_window_table() if is_incremental() else none) | indent(4) }}

),

final as (

    select
        symbol,
        exchange,
        ts,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        {{ mwh_as_bigint('trade_count') }} as trade_count,
        source_interval,
        source_bar_count
    from unioned

)

select * from final
