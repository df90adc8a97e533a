{#
    True when a row matches an acknowledged data fact of the `known_data_issues` seed: one of
    `check_names`, the row's symbol and exchange (a blank in the seed matches any), and `date_expr`
    inside the seed row's date range (a blank bound is open). One predicate for the warn tests that
    leave acknowledged rows out and for fct_data_quality_issues, which marks them.

    check_names  list of check names
    row          alias of the row's relation (with symbol and exchange columns)
    date_expr    SQL for the row's date
    known        relation or CTE name of the seed (default: the seed itself)
#}
{% macro mwh_is_acknowledged(check_names, row, date_expr, known=none) -%}
exists (
    select 1 as is_known
    from {{ known or ref('known_data_issues') }} as known
    where
        known.check_name in ('{{ check_names | join("', '") }}')
        and (known.symbol is null or known.symbol = {{ row }}.symbol)
        and (known.exchange is null or known.exchange = {{ row }}.exchange)
        and (known.start_date is null or {{ date_expr }} >= known.start_date)
        and (known.end_date is null or {{ date_expr }} <= known.end_date)
)
{%- endmacro %}
