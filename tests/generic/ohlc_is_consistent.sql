{#
    OHLC invariants of a bar: prices positive, low <= open/close <= high, volume not negative.
    Fails with every bar that breaks one.
#}
{% test ohlc_is_consistent(model, open='open', high='high', low='low', close='close', volume='volume') %}

select *
from {{ model }}
where
    not (
        {{ open }} > 0 and {{ high }} > 0 and {{ low }} > 0 and {{ close }} > 0
        and {{ volume }} >= 0
        and {{ low }} <= {{ high }}
        and {{ low }} <= {{ open }} and {{ open }} <= {{ high }}
        and {{ low }} <= {{ close }} and {{ close }} <= {{ high }}
    )

{% endtest %}
