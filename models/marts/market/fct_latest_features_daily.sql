{{
    config(
        indexes=mwh_indexes([
            {'columns': ['symbol', 'exchange'], 'unique': true},
        ]),
    )
}}

{#
    The newest row of the latest daily feature version (fct_features_daily) for every symbol: "the
    latest features of all symbols" reads one row per symbol. Rebuilt every run at a cost bounded by
    the number of symbols (mwh_latest_rows: one index probe per symbol on PostgreSQL/TimescaleDB).
#}

with

final as (

    {{ mwh_latest_rows(ref('fct_features_daily'), ref('dim_symbols')) | indent(4) }}

)

select * from final
