{{ mwh_feature_model_config() }}

{#
    Daily features, version 2: the catalog entries carrying version 2 (macros/market/mwh_feature_catalog.sql),
    on point-in-time adjusted prices (fct_bars_1d.pit_price_factor: a later split or dividend never
    changes a stored value). Built by mwh_daily_features (macros/market/features.sql), the exponential
    averages from int_market__ewm_states_daily.
#}

{{ mwh_daily_features(2) }}
