{#
    One daily bar per symbol and session: the vendor's own daily bar where one was loaded, otherwise
    the session rolled up from 1-minute bars. Prices are raw (as traded); adjustment comes later.
#}

{{ mwh_vendor_or_rollup('1d', ref('int_market__bars_rolled_up_1d')) }}
