{#
    SCD2 validity intervals [valid_from, valid_to) of one key never overlap, and at most one is open
    (valid_to null): "which row was valid at t" then has at most one answer.
#}
{% test ml_non_overlapping_validity(model, key, valid_from='valid_from', valid_to='valid_to') %}

with

ordered as (

    select
        {{ key }} as validity_key,
        {{ valid_from }} as valid_from,
        {{ valid_to }} as valid_to,
        lead({{ valid_from }}) over (partition by {{ key }} order by {{ valid_from }}) as next_valid_from
    from {{ model }}

)

select *
from ordered
where
    (valid_to is not null and valid_to < valid_from)
    or (next_valid_from is not null and (valid_to is null or valid_to > next_valid_from))

{% endtest %}
