{{
    config(
        indexes=mwh_indexes([
            {'columns': ['symbol', 'ts desc']},
            {'columns': ['ts']},
        ]),
    )
}}

{#
    Hourly bars: the vendor's own 1h bars where loaded, otherwise the hour rolled up from 1-minute
    bars; the union is int_market__bars_unioned_1h. Raw prices: intraday series are not adjusted for
    corporate actions.
#}

with

final as (

    select * from {{ ref('int_market__bars_unioned_1h') }}

)

select * from final
