{{
    config(
        materialized='view',
    )
}}

{#
    Training rows: the features of bar t (the catalog's columns of version var training_feature_version,
    see macros/market/mwh_feature_catalog.sql) next to the forward returns from bar t. Point-in-time correct:
    features of bar t are computed from bars up to and including t only (tested by truncating history
    and recomputing); labels start at t's close. Only rows whose 1-bar label exists are kept.
    A view over two indexed, incremental tables: always as current as they are, nothing to rebuild.
#}

with

features as (

    select * from {{ ref('fct_features_daily', v=var('training_feature_version')) }}

),

labels as (

    select * from {{ ref('fct_labels_daily') }}

),

final as (

    select
        features.symbol,
        features.exchange,
        features.ts,
        features.feature_version,
        {%- for column in mwh_feature_columns(var('training_feature_version')) %}
        features.{{ column }},
        {%- endfor %}
        features.actions_loaded_at,
        labels.forward_return_1,
        labels.forward_return_5,
        labels.forward_return_20,
        labels.horizon_end_ts_1,
        labels.horizon_end_ts_5,
        labels.horizon_end_ts_20
    from features
    inner join labels
        on
            features.symbol = labels.symbol
            and features.exchange = labels.exchange
            and features.ts = labels.ts
    where labels.forward_return_1 is not null

)

select * from final
