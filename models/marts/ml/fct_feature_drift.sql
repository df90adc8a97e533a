{#
    Feature drift per model version and feature: the population stability index (PSI) of the feature
    between the reference (training) window and the current window (int_ml__feature_values_windowed).
    Bins are the reference's var('ml_psi_bins') quantiles (edges deduplicated, the outer bins open
    ended); both windows are binned by the same edges.
        PSI = sum over bins (current share - reference share) * ln(current share / reference share)
    with empty bins floored at a share of 0.0001 so the logarithm stays finite. Judged only when both
    windows hold at least var('ml_psi_min_values') values; drift_level reads < 0.1 stable,
    < var('ml_psi_alert_threshold') moderate, above it significant.
#}

with

windowed as (

    select * from {{ ref('int_ml__feature_values_windowed') }}

),

reference_ntiles as (

    select
        model_id,
        feature_name,
        feature_value,
        ntile({{ var('ml_psi_bins') }}) over (
            partition by model_id, feature_name order by feature_value
        ) as ntile_bin
    from windowed
    where window_name = 'reference'

),

ntile_edges as (

    select
        model_id,
        feature_name,
        max(feature_value) as upper_edge
    from reference_ntiles
    group by model_id, feature_name, ntile_bin

),

edges as (

    {# Ties can give two quantiles the same edge: one bin per distinct edge. #}
    select distinct
        model_id,
        feature_name,
        upper_edge
    from ntile_edges

),

bins as (

    select
        model_id,
        feature_name,
        row_number() over (partition by model_id, feature_name order by upper_edge) as bin,
        lag(upper_edge) over (partition by model_id, feature_name order by upper_edge) as lower_edge,
        case
            when lead(upper_edge) over (partition by model_id, feature_name order by upper_edge) is not null
                then upper_edge
        end as upper_edge
    from edges

),

window_totals as (

    select
        model_id,
        feature_name,
        {{ mwh_count_if("window_name = 'reference'") }} as reference_n,
        {{ mwh_count_if("window_name = 'current'") }} as current_n
    from windowed
    group by model_id, feature_name

),

bin_counts as (

    select
        bins.model_id,
        bins.feature_name,
        bins.bin,
        sum({{ mwh_int("windowed.window_name = 'reference'") }}) as reference_count,
        sum({{ mwh_int("windowed.window_name = 'current'") }}) as current_count
    from bins
    left join windowed
        on
            bins.model_id = windowed.model_id
            and bins.feature_name = windowed.feature_name
            and (bins.lower_edge is null or bins.lower_edge < windowed.feature_value)
            and (bins.upper_edge is null or bins.upper_edge >= windowed.feature_value)
    group by bins.model_id, bins.feature_name, bins.bin

),

shares as (

    select
        bin_counts.model_id,
        bin_counts.feature_name,
        greatest(
            {{ mwh_safe_divide('cast(bin_counts.reference_count as double precision)', 'window_totals.reference_n') }},
            0.0001
        ) as reference_share,
        greatest(
            {{ mwh_safe_divide('cast(bin_counts.current_count as double precision)', 'window_totals.current_n') }},
            0.0001
        ) as current_share
    from bin_counts
    inner join window_totals
        on
            bin_counts.model_id = window_totals.model_id
            and bin_counts.feature_name = window_totals.feature_name

),

psi as (

    select
        model_id,
        feature_name,
        count(*) as n_bins,
        sum((current_share - reference_share) * ln(current_share / reference_share)) as psi
    from shares
    group by model_id, feature_name

),

final as (

    select
        window_totals.model_id,
        window_totals.feature_name,
        window_totals.reference_n,
        window_totals.current_n,
        psi.n_bins,
        case
            when
                window_totals.reference_n >= {{ var('ml_psi_min_values') }}
                and window_totals.current_n >= {{ var('ml_psi_min_values') }}
                then psi.psi
        end as psi,
        case
            when
                window_totals.reference_n < {{ var('ml_psi_min_values') }}
                or window_totals.current_n < {{ var('ml_psi_min_values') }}
                then 'insufficient data'
            when psi.psi < 0.1 then 'stable'
            when psi.psi < {{ var('ml_psi_alert_threshold') }} then 'moderate'
            else 'significant'
        end as drift_level,
        coalesce(
            window_totals.reference_n >= {{ var('ml_psi_min_values') }}
            and window_totals.current_n >= {{ var('ml_psi_min_values') }}
            and psi.psi >= {{ var('ml_psi_alert_threshold') }},
            false
        ) as is_drifting
    from window_totals
    left join psi
        on
            window_totals.model_id = psi.model_id
            and window_totals.feature_name = psi.feature_name

)

select * from final
