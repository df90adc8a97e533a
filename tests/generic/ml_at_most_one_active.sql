{#
    At most one row per `partition_by` value satisfies `flag` (a boolean column or expression): one
    active version per model, one open retrain request per model. Fails with each offending value.
#}
{% test ml_at_most_one_active(model, partition_by, flag) %}

select
    {{ partition_by }},
    count(*) as flagged_rows
from {{ model }}
where {{ flag }}
group by {{ partition_by }}
having count(*) > 1

{% endtest %}
