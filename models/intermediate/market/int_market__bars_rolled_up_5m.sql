{#
    5-minute bars from 1-minute bars, buckets aligned to UTC midnight: a continuous aggregate over
    raw.bars on TimescaleDB's full edition, an incremental table elsewhere; see macros/market/rollups.sql.
#}

{{ mwh_rollup_intraday('5 minutes', '5m') }}
