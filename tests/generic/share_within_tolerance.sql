{#
    At least `min_share` of the rows (where both values exist) have `column_name` within
    `relative_tolerance` of `compare_column`. Fails with one summary row when the share is lower, or,
    with `group_by` (e.g. [symbol, exchange]), one row per group whose share is lower.
    Used to check computed adjusted closes against the vendor's (per symbol).

    acknowledged_checks  optional list of check names in the `known_data_issues` seed: rows whose
                         (symbol, exchange, `date_column`) an entry of one of these checks covers are
                         left out of the comparison (needs symbol and exchange columns).
#}
{% test share_within_tolerance(model, column_name, compare_column, relative_tolerance=0.005, min_share=0.99,
                               group_by=none, acknowledged_checks=none, date_column='session_date') %}

{%- set groups = group_by or [] %}

with

compared as (

    select
        {% for column in groups -%}
        rows_compared.{{ column }},
        {% endfor -%}
        case
            when abs(rows_compared.{{ column_name }} - rows_compared.{{ compare_column }})
                <= {{ relative_tolerance }} * abs(rows_compared.{{ compare_column }}) then 1
            else 0
        end as is_within
    from {{ model }} as rows_compared
    where
        rows_compared.{{ column_name }} is not null
        and rows_compared.{{ compare_column }} is not null
        and rows_compared.{{ compare_column }} != 0
        {% if acknowledged_checks -%}
        and not {{ mwh_is_acknowledged(acknowledged_checks, 'rows_compared', 'rows_compared.' ~ date_column) }}
        {%- endif %}

),

summary as (

    select
        {% for column in groups -%}
        {{ column }},
        {% endfor -%}
        count(*) as compared_rows,
        sum(is_within) as rows_within,
        cast(sum(is_within) as {{ mwh_double() }}) / nullif(count(*), 0) as share_within
    from compared
    {% if groups -%}
    group by {{ groups | join(', ') }}
    {%- endif %}

)

select *
from summary
where compared_rows > 0 and share_within < {{ min_share }}

{% endtest %}
