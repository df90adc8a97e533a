{{ config(
    materialized=mwh_incremental_materialization(),
    incremental_strategy=mwh_incremental_strategy(),
    unique_key=['symbol', 'exchange', 'ts'],
    on_schema_change='fail',
    indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}, {'columns': ['ts']}]),
) }}

{#
    The exponential averages every daily feature version reads, per symbol and bar, carried between
    incremental runs: mwh_ewm_states (macros/market/ewm.sql).
#}

{{ mwh_ewm_states('daily') }}
