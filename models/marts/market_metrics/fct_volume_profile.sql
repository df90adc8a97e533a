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

with recursive

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

point_of_control as (

    select
        symbol,
        exchange,
        window_start_ts,
        bin_index,
        volume
    from (
        select
            symbol,
            exchange,
            window_start_ts,
            bin_index,
            volume,
            row_number() over (
                partition by symbol, exchange, window_start_ts order by volume desc, bin_index asc
            ) as volume_rank
        from all_bins
    ) as ranked
    where volume_rank = 1

),

{#- The value area, one step per row: [lower_bin, upper_bin] and the volume it holds. -#}
{%- set take_below = "(above.bin_index is null or (below.bin_index is not null and below.volume > above.volume))" %}

value_area_steps (symbol, exchange, window_start_ts, step, lower_bin, upper_bin, area_volume) as (

    select
        symbol,
        exchange,
        window_start_ts,
        0 as step,
        bin_index as lower_bin,
        bin_index as upper_bin,
        volume as area_volume
    from point_of_control
    union all
    select
        steps.symbol,
        steps.exchange,
        steps.window_start_ts,
        steps.step + 1,
        case when {{ take_below }} then steps.lower_bin - 1 else steps.lower_bin end,
        case when {{ take_below }} then steps.upper_bin else steps.upper_bin + 1 end,
        steps.area_volume + case when {{ take_below }} then below.volume else above.volume end
    from value_area_steps as steps
    inner join windows
        on
            steps.symbol = windows.symbol
            and steps.exchange = windows.exchange
            and steps.window_start_ts = windows.window_start_ts
    left join all_bins as below
        on
            steps.symbol = below.symbol
            and steps.exchange = below.exchange
            and steps.window_start_ts = below.window_start_ts
            and below.bin_index = steps.lower_bin - 1
    left join all_bins as above
        on
            steps.symbol = above.symbol
            and steps.exchange = above.exchange
            and steps.window_start_ts = above.window_start_ts
            and above.bin_index = steps.upper_bin + 1
    where
        steps.area_volume < {{ value_area }} * windows.window_volume
        and (below.bin_index is not null or above.bin_index is not null)

),

value_area as (

    select
        symbol,
        exchange,
        window_start_ts,
        lower_bin,
        upper_bin,
        area_volume
    from (
        select
            *,
            row_number() over (partition by symbol, exchange, window_start_ts order by step desc) as step_rank
        from value_area_steps
    ) as last_step
    where step_rank = 1

),

final as (

    select
        all_bins.symbol,
        all_bins.exchange,
        all_bins.window_start_ts,
        all_bins.window_start_ts + interval '{{ window_width }}' as window_end_ts,
        all_bins.bin_index,
        all_bins.window_low + (all_bins.window_high - all_bins.window_low) * all_bins.bin_index / {{ bins }}
            as price_low,
        all_bins.window_low + (all_bins.window_high - all_bins.window_low) * (all_bins.bin_index + 1) / {{ bins }}
            as price_high,
        all_bins.volume,
        cast(all_bins.bar_count as integer) as bar_count,
        {{ mwh_safe_divide('all_bins.volume', 'all_bins.window_volume') }} as volume_share,
        all_bins.bin_index = point_of_control.bin_index as is_point_of_control,
        all_bins.bin_index between value_area.lower_bin and value_area.upper_bin as is_in_value_area,
        all_bins.window_low
        + (all_bins.window_high - all_bins.window_low) * (point_of_control.bin_index + 0.5) / {{ bins }}
            as poc_price,
        all_bins.window_low + (all_bins.window_high - all_bins.window_low) * value_area.lower_bin / {{ bins }}
            as value_area_low,
        all_bins.window_low + (all_bins.window_high - all_bins.window_low) * (value_area.upper_bin + 1) / {{ bins }}
            as value_area_high,
        {{ mwh_safe_divide('value_area.area_volume', 'all_bins.window_volume') }} as value_area_volume_share,
        all_bins.window_volume,
        all_bins.loaded_at
    from all_bins
    inner join point_of_control
        on
            all_bins.symbol = point_of_control.symbol
            and all_bins.exchange = point_of_control.exchange
            and all_bins.window_start_ts = point_of_control.window_start_ts
    inner join value_area
        on
            all_bins.symbol = value_area.symbol
            and all_bins.exchange = value_area.exchange
            and all_bins.window_start_ts = value_area.window_start_ts

)

select * from final
