{#
    Adjustment events we cannot fully explain, one row per check and bar (a data fact: reported in
    fct_data_quality_issues, never a build failure). See int_market__adjustment_events.
#}

with

events as (

    select * from {{ ref('int_market__adjustment_events') }}

),

checks as (

    select
        'dividend_over_10pct_of_price' as check_name,
        symbol,
        exchange,
        session_date,
        'dividend ' || cast(dividend as {{ mwh_varchar() }}) || ' is '
        || cast(round(cast(100 * dividend / previous_close_ex_split as numeric), 1) as {{ mwh_varchar() }})
        || '% of the previous close ' || cast(previous_close_ex_split as {{ mwh_varchar() }}) as detail
    from events
    where
        has_action
        and dividend > 0.1 * previous_close_ex_split
        and dividend < previous_close_ex_split

    union all

    select
        'dividend_at_or_above_price' as check_name,
        symbol,
        exchange,
        session_date,
        'dividend ' || cast(dividend as {{ mwh_varchar() }}) || ' >= previous close '
        || cast(previous_close_ex_split as {{ mwh_varchar() }}) || '; applied factor '
        || cast(applied_factor as {{ mwh_varchar() }}) || ' (' || factor_source || ')' as detail
    from events
    where has_action and dividend > 0 and dividend >= previous_close_ex_split

    union all

    select
        'factor_disagrees_with_vendor' as check_name,
        symbol,
        exchange,
        session_date,
        'computed factor ' || coalesce(cast(computed_factor as {{ mwh_varchar() }}), 'none')
        || ', vendor factor ' || cast(vendor_factor as {{ mwh_varchar() }}) || '; applied ' || factor_source as detail
    from events
    where
        has_action
        and vendor_factor is not null
        and (
            computed_factor is null
            or abs(vendor_factor / computed_factor - 1) > {{ var('vendor_step_tolerance') }}
        )

    union all

    select
        'vendor_factor_implausible' as check_name,
        symbol,
        exchange,
        session_date,
        'vendor factor ' || cast(vendor_factor as {{ mwh_varchar() }}) || ' for split '
        || cast(split_ratio as {{ mwh_varchar() }}) || ', dividend ' || cast(dividend as {{ mwh_varchar() }})
        || '; applied ' || factor_source as detail
    from events
    where has_action and vendor_factor is not null and not is_vendor_plausible

    union all

    select
        'vendor_adjustment_without_action' as check_name,
        symbol,
        exchange,
        session_date,
        'vendor adjusted close steps by factor ' || cast(vendor_factor as {{ mwh_varchar() }})
        || ' with no split or dividend loaded; not applied' as detail
    from events
    where not has_action

),

final as (

    select
        cast(check_name as {{ mwh_varchar() }}) as check_name,
        symbol,
        exchange,
        cast('1d' as {{ mwh_varchar() }}) as bar_interval,
        session_date as issue_date,
        cast(detail as {{ mwh_varchar() }}) as detail
    from checks

)

select * from final
