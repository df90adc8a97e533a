{#
    A rollup agrees with its source bars: per bucket, volume is the sum of the source volumes, open the
    open of the earliest source bar, close the close of the latest, high/low the extremes, and the source
    bar count matches. Recomputed here without first/last aggregates (the first and last bar are found by
    their ts and joined back), so it checks the model's cross-database code rather than repeating it.

    source_model     the source bars (e.g. ref('stg_market__bars'))
    source_interval  the source bars' interval (1m)
    bucket_width     '5 minutes', '15 minutes', '1 hour'; or 'session' for daily bars by exchange session
    tolerance        relative tolerance for volume sums (floating point)

    Bounded by default, like `no_missing_sessions`: only the series with source bars loaded since the
    build before (int_market__build_marks; mwh_test_changed_window in macros/market/test_scope.sql),
    from `mwh_test_lookback_days` (UTC midnight) before the first of those bars (a whole bucket or
    session, which never starts before its UTC day). With `--vars '{mwh_full_tests: true}'` every
    bucket (the nightly job).
#}
{% test rollup_reconciles(model, source_model, source_interval='1m', bucket_width='1 hour', tolerance=1e-9) %}

{%- set bounded = not var('mwh_full_tests', false) %}

with

{% if bounded -%}
test_window as (

    {{ mwh_test_changed_window(source_interval, source_interval) | indent(4) }}

),

rollup_rows as (

    select rollup_all.*
    from {{ model }} as rollup_all
    inner join test_window
        on
            rollup_all.symbol = test_window.symbol
            and rollup_all.exchange = test_window.exchange
            and rollup_all.ts >= test_window.start_ts

),
{%- endif %}

source_bars as (

    select
        source_all.symbol,
        source_all.exchange,
        source_all.ts,
        source_all.open,
        source_all.high,
        source_all.low,
        source_all.close,
        source_all.volume
    from {{ source_model }} as source_all
    {% if bounded -%}
    inner join test_window
        on
            source_all.symbol = test_window.symbol
            and source_all.exchange = test_window.exchange
            and source_all.ts >= test_window.start_ts
    {% endif -%}
    where source_all.bar_interval = '{{ source_interval }}'

),

{% if bucket_width == 'session' %}
{#- the session date first, then the join on it: inside the join condition DuckDB kept it a filter and
    joined on the exchange alone (every 1m bar against every session of its calendar, 16 GB spilled at
    50M bars) -#}
source_dated as (

    select
        source_bars.*,
        exchanges.calendar,
        case
            when exchanges.calendar = '24/7' then {{ mwh_utc_date('source_bars.ts') }}
            else {{ mwh_local_date('source_bars.ts', 'exchanges.timezone') }}
        end as session_date
    from source_bars
    inner join {{ ref('exchanges') }} as exchanges
        on source_bars.exchange = exchanges.exchange

),

bucketed as (

    select
        source_dated.symbol,
        source_dated.exchange,
        {{ mwh_date_to_utc_ts('sessions.session_date') }} as bucket_ts,
        source_dated.ts,
        source_dated.open,
        source_dated.high,
        source_dated.low,
        source_dated.close,
        source_dated.volume
    from source_dated
    inner join {{ ref('int_market__trading_sessions') }} as sessions
        on
            source_dated.calendar = sessions.calendar
            and source_dated.session_date = sessions.session_date
            and source_dated.ts >= sessions.open_utc
            and source_dated.ts < sessions.close_utc

),
{% else %}
bucketed as (

    select
        symbol,
        exchange,
        {{ mwh_time_bucket(bucket_width, 'ts') }} as bucket_ts,
        ts,
        open,
        high,
        low,
        close,
        volume
    from source_bars

),
{% endif %}

{#- the first and last bar of each bucket by its ts (min, max), then their open and close by a join on
    the source's key: no window over every source bar (two row_number() sorts of 50M 1m bars outgrew
    DuckDB's 3 GB and spilled for over 25 min on the 1d rollup's test) and no first/last aggregate, so
    the model's cross-database code is not repeated here. The join goes to the source model itself, not
    to `source_bars`: referenced three times, PostgreSQL materialized that CTE (every column of 50M 1m
    bars) and, misestimating it at 83,396 rows, hashed it twice; the 15-minute test at 50M bars filled
    the disk's last 21 GB. Referenced once it is inlined, and the key lookups may use the model's index -#}
bucket_extremes as (

    select
        symbol,
        exchange,
        bucket_ts,
        min(ts) as first_ts,
        max(ts) as last_ts,
        max(high) as high,
        min(low) as low,
        sum(volume) as volume,
        count(*) as source_bar_count
    from bucketed
    group by symbol, exchange, bucket_ts

),

expected as (

    select
        bucket_extremes.symbol,
        bucket_extremes.exchange,
        bucket_extremes.bucket_ts,
        first_bar.open,
        last_bar.close,
        bucket_extremes.high,
        bucket_extremes.low,
        bucket_extremes.volume,
        bucket_extremes.source_bar_count
    from bucket_extremes
    inner join {{ source_model }} as first_bar
        on
            bucket_extremes.symbol = first_bar.symbol
            and bucket_extremes.exchange = first_bar.exchange
            and first_bar.bar_interval = '{{ source_interval }}'
            and bucket_extremes.first_ts = first_bar.ts
    inner join {{ source_model }} as last_bar
        on
            bucket_extremes.symbol = last_bar.symbol
            and bucket_extremes.exchange = last_bar.exchange
            and last_bar.bar_interval = '{{ source_interval }}'
            and bucket_extremes.last_ts = last_bar.ts

),

compared as (

    select
        coalesce(expected.symbol, rollup.symbol) as symbol,
        coalesce(expected.exchange, rollup.exchange) as exchange,
        coalesce(expected.bucket_ts, rollup.ts) as bucket_ts,
        expected.open as expected_open,
        rollup.open as rollup_open,
        expected.close as expected_close,
        rollup.close as rollup_close,
        expected.high as expected_high,
        rollup.high as rollup_high,
        expected.low as expected_low,
        rollup.low as rollup_low,
        expected.volume as expected_volume,
        rollup.volume as rollup_volume,
        expected.source_bar_count as expected_bar_count,
        rollup.source_bar_count as rollup_bar_count
    from expected
    full outer join {{ 'rollup_rows' if bounded else model }} as rollup
        on
            expected.symbol = rollup.symbol
            and expected.exchange = rollup.exchange
            and expected.bucket_ts = rollup.ts

)

select *
from compared
where
    expected_open is null
    or rollup_open is null
    or expected_open != rollup_open
    or expected_close != rollup_close
    or expected_high != rollup_high
    or expected_low != rollup_low
    or expected_bar_count != rollup_bar_count
    or abs(expected_volume - rollup_volume) > {{ tolerance }} * greatest(abs(expected_volume), 1)

{% endtest %}
