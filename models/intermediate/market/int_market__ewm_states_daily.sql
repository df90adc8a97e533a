{{ mwh_feature_model_config(latest_view=false) }}

{#
    The exponential averages every daily feature version reads, per symbol and bar, carried between
    incremental runs: mwh_ewm_states (macros/market/ewm.sql).
#}

{{ mwh_ewm_states('daily') }}
