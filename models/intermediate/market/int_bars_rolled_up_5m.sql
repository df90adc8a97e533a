{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
    )
}}

{# 5m bars from 1-minute bars, buckets aligned to UTC midnight; see macros/market/rollups.sql. #}

{{ rollup_intraday('5 minutes', '5m') }}
