{#
    Trading signals keep their stop on the losing side of the entry and their target on the winning
    side: BUY stop < entry < target, SELL target < entry < stop (levels that are null pass). The loader
    rejects violations; this guards the marts against rows written around it.
#}
{% test ml_stop_on_losing_side(model, signal_type='signal_type', entry='entry_price', stop='stop_price',
                               target='target_price') %}

select *
from {{ model }}
where
    ({{ signal_type }} = 'BUY' and ({{ stop }} >= {{ entry }} or {{ target }} <= {{ entry }}))
    or ({{ signal_type }} = 'SELL' and ({{ stop }} <= {{ entry }} or {{ target }} >= {{ entry }}))

{% endtest %}
