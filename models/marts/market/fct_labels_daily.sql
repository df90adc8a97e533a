{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
        indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}]),
    )
}}

{#
    Forward returns of daily bars: what a model is trained to predict. They look into the future by
    design, so they live apart from the features and only meet them in the training set. Returns use
    adjusted closes (dividends and splits included); the label of a bar is null until its horizon's bar
    exists. Incremental: a new bar completes the labels of the 20 bars before it, which a run rewrites
    (see macros/market/labels.sql); a symbol with changed corporate actions is rewritten in full.
#}

{{ mwh_forward_return_labels(ref('fct_bars_1d'), 'adj_close', var('daily_late_window_days', 7), true) }}
