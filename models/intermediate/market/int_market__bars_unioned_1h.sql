{{ config(materialized='view') }}

{#
    One hourly bar per symbol and hour: the vendor's own 1h bar where one was loaded, otherwise the
    hour rolled up from 1-minute bars (int_market__bars_rolled_up_1h, UTC-aligned). Raw prices: intraday
    series are not adjusted for corporate actions.
#}

{{ mwh_vendor_or_rollup('1h', ref('int_market__bars_rolled_up_1h')) }}
