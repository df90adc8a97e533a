{#
    No timestamp after now (plus `allowance`, an interval literal such as '5 minutes' for clock skew).
    A bar stamped in the future is a time-zone or unit bug in a loader.
#}
{% test not_in_future(model, column_name, allowance='0 minutes') %}

select *
from {{ model }}
where {{ column_name }} > current_timestamp + interval '{{ allowance }}'

{% endtest %}
