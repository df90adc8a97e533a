{#
    Precision and recall per class (up, down, flat) for each classification model version, per symbol
    and over all its symbols (symbol = 'ALL'), over resolved predictions.
    precision = correct predictions of the class / predictions of the class;
    recall = correct predictions of the class / outcomes of the class.
#}

with

outcomes as (

    select * from {{ ref('fct_prediction_outcomes') }}
    where prediction_kind = 'classification' and is_resolved

),

scoped as (

    select
        model_id,
        symbol,
        predicted_class,
        realized_class
    from outcomes
    union all
    select
        model_id,
        'ALL' as symbol,
        predicted_class,
        realized_class
    from outcomes

),

classes as (

    select
        model_id,
        symbol,
        predicted_class as class_label
    from scoped
    union
    select
        model_id,
        symbol,
        realized_class as class_label
    from scoped

),

counted as (

    select
        classes.model_id,
        classes.symbol,
        classes.class_label,
        {{ mwh_count_if('scoped.predicted_class = classes.class_label') }} as predicted_count,
        {{ mwh_count_if('scoped.realized_class = classes.class_label') }} as realized_count,
        {{ mwh_count_if('scoped.predicted_class = classes.class_label
                         and scoped.realized_class = classes.class_label') }} as true_positives,
        count(*) as n_resolved
    from classes
    inner join scoped
        on
            classes.model_id = scoped.model_id
            and classes.symbol = scoped.symbol
    group by classes.model_id, classes.symbol, classes.class_label

),

final as (

    select
        model_id,
        symbol,
        class_label,
        n_resolved,
        predicted_count,
        realized_count,
        true_positives,
        {{ mwh_safe_divide('cast(true_positives as double precision)', 'predicted_count') }} as class_precision,
        {{ mwh_safe_divide('cast(true_positives as double precision)', 'realized_count') }} as class_recall
    from counted

)

select * from final
