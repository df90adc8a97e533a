{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ mwh_forget_changed_daily(this) }}",
        post_hook="{{ mwh_mark_checked_through() }}",
    )
}}

{#
    One daily bar per symbol and session: the vendor's own daily bar where one was loaded, otherwise
    the session rolled up from 1-minute bars. Prices are raw (as traded); adjustment comes later.

    Incremental (macros/market/incremental_tables.sql): a run rewrites, per series with daily bars, 1m
    bars or corporate actions loaded since the table's high-water mark (checked_through_loaded_at), its
    bars from the first changed one on; the pre-hook forgets them first. Other series are not touched.
#}

-- depends_on: {{ ref('stg_market__corporate_actions') }}

with

unioned as (

    {{ mwh_vendor_or_rollup('1d', ref('int_market__bars_rolled_up_1d')) | indent(4) }}

){% if is_incremental() %},

changed_window as (

    {{ mwh_daily_changed_window(this, this) | indent(4) }}

){% endif %}

select
    unioned.*,
    (select max(staged.loaded_at) from {{ ref('stg_market__bars') }} as staged) as checked_through_loaded_at
from unioned
{% if is_incremental() -%}
inner join changed_window
    on
        unioned.symbol = changed_window.symbol
        and unioned.exchange = changed_window.exchange
        and unioned.ts >= changed_window.first_changed_ts
{%- endif %}
