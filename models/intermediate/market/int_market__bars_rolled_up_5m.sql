{{
    config(
        materialized='continuous_aggregate',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
        refresh_policy={'start_offset': mwh_rollup_refresh_start_offset(), 'end_offset': 'null', 'schedule_interval': "'30 minutes'"},
        materialized_only=false,
    )
}}

{#
    5-minute bars from 1-minute bars, buckets aligned to UTC midnight: a continuous aggregate over
    raw.bars on TimescaleDB's full edition, an incremental table elsewhere; see macros/market/rollups.sql.
#}

{{ mwh_rollup_intraday('5 minutes', '5m') }}
