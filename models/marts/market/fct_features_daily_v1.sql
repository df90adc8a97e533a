{#
    Daily features, version 1: the catalog entries carrying version 1 (macros/market/mwh_feature_catalog.sql).
    Version 2 carries every one of them (the same entries: the same definitions, inputs and rounding), so
    version 1 is a view of fct_features_daily_v2's rows with version 1's columns (mwh_feature_projection,
    macros/market/features.sql): each feature is computed once. The build stops with one line if an entry
    of version 1 ever leaves version 2; then give version 1 its own table again (mwh_daily_features(1)).
#}

{{ mwh_feature_projection('fct_features_daily', 1, 2) }}
