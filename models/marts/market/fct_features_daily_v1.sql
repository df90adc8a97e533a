{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
        indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}]),
        post_hook=[
            "{{ latest_version_view_sql('drop') }}",
            "{{ latest_version_view_sql('create') }}",
        ],
    )
}}

{#
    Daily features, version 1, on split- and dividend-adjusted prices. The definitions live in
    macros/market/features.sql; a changed definition becomes fct_features_daily_v2 (a new dbt model
    version) and this version keeps being built and queryable until it is retired.
#}

{{ market_features(
    ref('fct_bars_1d'),
    {
        'open': 'adj_open',
        'high': 'adj_high',
        'low': 'adj_low',
        'close': 'adj_close',
        'volume': 'adj_volume',
        'vwap': 'adj_vwap',
        'price_factor': 'price_factor',
    },
    1,
    actions_aware=true
) }}
