{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
    )
}}

{# 1h bars from 1-minute bars, buckets aligned to UTC midnight; see macros/market/rollups.sql. #}

{{ rollup_intraday('1 hour', '1h') }}
