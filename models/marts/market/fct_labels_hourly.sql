{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
        indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}]),
    )
}}

{# Forward returns of hourly bars (traded prices); see fct_labels_daily. #}

{{ mwh_forward_return_labels(ref('fct_bars_1h'), 'close', var('features_late_window_days'), false) }}
