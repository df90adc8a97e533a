-- depends_on: {{ ref('stg_market__corporate_actions') }}
{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ mwh_forget_changed_daily() }}",
        post_hook="{{ mwh_mark_checked_through() }}",
    )
}}

{#
    One daily bar per symbol and session: the vendor's own daily bar where one was loaded, otherwise
    the session rolled up from 1-minute bars. Prices are raw (as traded); adjustment comes later.

    Incremental (macros/market/incremental_tables.sql): per series with daily bars, 1m bars or corporate
    actions loaded into staging since the table's high-water mark (checked_through_loaded_at), the
    pre-hook forgets its bars from the first changed one on (a 1m bar: its UTC day before) and the run
    writes them again from staging and int_market__bars_rolled_up_1d. Other series are not read. The
    same rows as a full refresh.
#}

{%- set mark = mwh_load_mark() %}

{{ mwh_vendor_or_rollup('1d', ref('int_market__bars_rolled_up_1d'),
    changed=mwh_changed_window_table() if is_incremental() else none, mark=mark) }}
