{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'window_start_ts', 'bin_index'],
        on_schema_change='fail',
        tags=['market_metrics'],
        pre_hook="{{ mwh_session_settings() }}",
        post_hook="{{ mwh_keep_mark() }}",
        indexes=mwh_indexes([{'columns': ['symbol', 'exchange', 'window_start_ts']}]),
    )
}}

{#
    Volume profile: volume by price level per symbol and window (`volume_profile_window`, default
    '1 day', UTC-aligned buckets), from 1-minute bars, with the point of control and the value area.
    - Levels: `volume_profile_bins` equal-width bins between the window's lowest low and highest high;
      bin i covers [low + i w, low + (i + 1) w), the last one includes the high. Each bar's whole volume
      goes to the bin of its typical price (high + low + close) / 3.
    - Point of control (POC): the bin with the most volume (ties: the lowest price).
    - Value area: grown from the POC one bin at a time, each step adding the neighbour (the bin just
      below or just above the area) with more volume (ties: the one above), until it holds at least
      `volume_profile_value_area` (70%) of the window's volume.
    Every bin of a window has a row, empty ones too (volume 0).
    Incremental: a window depends only on its own bars, so an incremental run recomputes only the windows
    holding a bar loaded since the table's load mark (mwh_loaded_since; the mark kept in its mark
    table by mwh_keep_mark), reading only their bars; all `bins` rows of such a window are replaced (delete+insert).
#}

{%- set bins = var('volume_profile_bins', 50) | int -%}
{%- set window_width = var('volume_profile_window', '1 day') -%}
{%- set value_area = var('volume_profile_value_area', 0.7) -%}
{#- A table built before this model was incremental has no loaded_at: one line saying what to run. -#}
{%- if execute and is_incremental() and 'loaded_at' not in (adapter.get_columns_in_relation(this)
        | map(attribute='name') | map('lower') | list) -%}
    {{ exceptions.raise_compiler_error(this ~ " was built by an earlier version of the project (no loaded_at "
        ~ "column): run `mwh build --full-refresh --select fct_volume_profile` once, then build as usual") }}
{%- endif -%}

with

{% if is_incremental() -%}
high_water as (

    select {{ mwh_kept_mark('(select max(held.loaded_at) from ' ~ this ~ ' as held)') }} as loaded_at

),

changed_windows as (

    select distinct
        symbol,
        exchange,
        {{ mwh_time_bucket(window_width, 'ts') }} as window_start_ts
    from {{ ref('stg_market__bars') }}
    where
        bar_interval = {{ mwh_read_interval('1m') }}
        and {{ mwh_loaded_since('(select high_water.loaded_at from high_water)') }}

),

{#- Only the bars from the first changed window on are bucketed, then only the changed windows kept. -#}
recent_bars as (

    select *
    from {{ ref('stg_market__bars') }}
    where
        bar_interval = {{ mwh_read_interval('1m') }}
        and ts >= (select min(changed_windows.window_start_ts) from changed_windows)

),

minute_bars as (

    select
        recent_bars.symbol,
        recent_bars.exchange,
        changed_windows.window_start_ts,
        recent_bars.high,
        recent_bars.low,
        recent_bars.volume,
        (recent_bars.high + recent_bars.low + recent_bars.close) / 3 as typical_price,
        recent_bars.loaded_at
    from recent_bars
    inner join changed_windows
        on
            recent_bars.symbol = changed_windows.symbol
            and recent_bars.exchange = changed_windows.exchange
            and {{ mwh_time_bucket(window_width, 'recent_bars.ts') }} = changed_windows.window_start_ts

),

{% else -%}
minute_bars as (

    select
        symbol,
        exchange,
        {{ mwh_time_bucket(window_width, 'ts') }} as window_start_ts,
        high,
        low,
        volume,
        (high + low + close) / 3 as typical_price,
        loaded_at
    from {{ ref('stg_market__bars') }}
    where bar_interval = {{ mwh_read_interval('1m') }}

),

{% endif -%}

windows as (

    select
        symbol,
        exchange,
        window_start_ts,
        min(low) as window_low,
        max(high) as window_high,
        sum(volume) as window_volume,
        count(*) as bar_count,
        max(loaded_at) as loaded_at
    from minute_bars
    group by symbol, exchange, window_start_ts

),

binned as (

    select
        minute_bars.symbol,
        minute_bars.exchange,
        minute_bars.window_start_ts,
        minute_bars.volume,
        case
            when windows.window_high = windows.window_low then 0
            else
                least(
                    {{ bins - 1 }},
                    cast(floor(
                        (minute_bars.typical_price - windows.window_low)
                        / (windows.window_high - windows.window_low) * {{ bins }}
                    ) as integer)
                )
        end as bin_index
    from minute_bars
    inner join windows
        on
            minute_bars.symbol = windows.symbol
            and minute_bars.exchange = windows.exchange
            and minute_bars.window_start_ts = windows.window_start_ts

),

bin_volumes as (

    select
        symbol,
        exchange,
        window_start_ts,
        bin_index,
        sum(volume) as volume,
        count(*) as bar_count
    from binned
    group by symbol, exchange, window_start_ts, bin_index

),

all_bins as (

    select
        windows.symbol,
        windows.exchange,
        windows.window_start_ts,
        windows.window_low,
        windows.window_high,
        windows.window_volume,
        windows.loaded_at,
        {{ mwh_as_bigint('integer_series.n') }} as bin_index,
        coalesce(bin_volumes.volume, 0) as volume,
        coalesce(bin_volumes.bar_count, 0) as bar_count
    from windows
    cross join {{ mwh_integer_series(0, bins - 1) }}
    left join bin_volumes
        on
            windows.symbol = bin_volumes.symbol
            and windows.exchange = bin_volumes.exchange
            and windows.window_start_ts = bin_volumes.window_start_ts
            and integer_series.n = bin_volumes.bin_index

),

{#- The point of control and the value area, per window, as window functions over its bins (no join: on
    PostgreSQL the joins of the bins to per-window results were planned from estimates of one row, as nested
    loops over every bin and every window).
    The value area without recursion: the greedy walk from the POC (each step takes the neighbour with more
    volume, ties above) visits each side's bins by distance, and a side's bin waits only for the other
    side's bins with more volume than the least volume on its own side so far (its running minimum, the
    bin that held the side back). So the walk is the bins ordered by that running minimum, descending,
    above first on ties, then by distance. Steps are taken while the area before them is under
    `volume_profile_value_area` of the window's volume; the area is summed in the walk's order from the POC,
    as the walk adds it. tests/python/risk/test_risk_and_metrics.py checks it against the walk itself. -#}
{%- set per_window = "partition by symbol, exchange, window_start_ts" %}

with_point_of_control as (

    select
        *,
        first_value(bin_index) over (
            {{ per_window }} order by volume desc, bin_index asc
            rows between unbounded preceding and unbounded following
        ) as poc_bin
    from all_bins

),

walk_sides as (

    select
        *,
        case when bin_index = poc_bin then 0 when bin_index > poc_bin then 1 else 2 end as side_rank,
        abs(bin_index - poc_bin) as distance
    from with_point_of_control

),

walk_held_back as (

    select
        *,
        min(volume) over (
            {{ per_window }}, side_rank order by distance rows between unbounded preceding and current row
        ) as held_back_by
    from walk_sides

),

walk_steps as (

    select
        *,
        row_number() over (
            {{ per_window }} order by side_rank = 0 desc, held_back_by desc, side_rank asc, distance asc
        ) - 1 as step
    from walk_held_back

),

walk_areas as (

    select
        *,
        sum(volume) over ({{ per_window }} order by step rows between unbounded preceding and current row)
            as area_volume
    from walk_steps

),

walk_taken as (

    select
        *,
        coalesce(
            lag(area_volume) over ({{ per_window }} order by step) < {{ value_area }} * window_volume, true
        ) as is_in_value_area
    from walk_areas

),

value_areas as (

    select
        *,
        min(case when is_in_value_area then bin_index end) over ({{ per_window }}) as lower_bin,
        max(case when is_in_value_area then bin_index end) over ({{ per_window }}) as upper_bin,
        max(case when is_in_value_area then area_volume end) over ({{ per_window }}) as value_area_volume
    from walk_taken

),

final as (

    select
        symbol,
        exchange,
        window_start_ts,
        window_start_ts + interval '{{ window_width }}' as window_end_ts,
        bin_index,
        window_low + (window_high - window_low) * bin_index / {{ bins }} as price_low,
        window_low + (window_high - window_low) * (bin_index + 1) / {{ bins }} as price_high,
        volume,
        cast(bar_count as integer) as bar_count,
        {{ mwh_safe_divide('volume', 'window_volume') }} as volume_share,
        bin_index = poc_bin as is_point_of_control,
        is_in_value_area,
        window_low + (window_high - window_low) * (poc_bin + 0.5) / {{ bins }} as poc_price,
        window_low + (window_high - window_low) * lower_bin / {{ bins }} as value_area_low,
        window_low + (window_high - window_low) * (upper_bin + 1) / {{ bins }} as value_area_high,
        {{ mwh_safe_divide('value_area_volume', 'window_volume') }} as value_area_volume_share,
        window_volume,
        loaded_at
    from value_areas

)

select * from final
