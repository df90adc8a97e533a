{#
    At least `min_share` of the rows (where both values exist) have `column_name` within
    `relative_tolerance` of `compare_column`. Fails with one summary row when the share is lower.
    Used to check computed adjusted closes against the vendor's.
#}
{% test share_within_tolerance(model, column_name, compare_column, relative_tolerance=0.005, min_share=0.99) %}

with

compared as (

    select
        case
            when abs({{ column_name }} - {{ compare_column }})
                <= {{ relative_tolerance }} * abs({{ compare_column }}) then 1
            else 0
        end as is_within
    from {{ model }}
    where {{ column_name }} is not null and {{ compare_column }} is not null and {{ compare_column }} != 0

),

summary as (

    select
        count(*) as compared_rows,
        sum(is_within) as rows_within,
        cast(sum(is_within) as double precision) / nullif(count(*), 0) as share_within
    from compared

)

select *
from summary
where compared_rows > 0 and share_within < {{ min_share }}

{% endtest %}
