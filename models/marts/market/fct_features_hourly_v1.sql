{{ mwh_feature_model_config() }}

{#
    Hourly features, version 1, on traded (unadjusted) hourly prices; the catalog's version-1 entries (macros/market/mwh_feature_catalog.sql).
    Windows count bars, not clock hours: 20 bars of a 24/7 pair are 20 hours, of an equity about three
    sessions. Built by mwh_market_features (macros/market/features.sql), the exponential averages from
    int_market__ewm_states_hourly.
#}

{{ mwh_market_features('hourly', 1) }}
