{#
    When the last two builds started (run_started_at, UTC): the high-water marks of the data tests on
    what changed (get_where_subquery in macros/market/incremental_tables.sql). A test scopes itself to
    the bars loaded since the older of the two: whether this build has already rewritten this table or
    not, that covers everything the build loaded (and, before the rewrite, the build before's too). A
    first build or a full refresh keeps one mark: everything is tested.
#}

{%- set built_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "+00' as "
    ~ mwh_timestamptz() ~ ")" %}
{%- set previous = load_relation(this) if execute and not flags.FULL_REFRESH else none %}

with

marks as (

    select {{ built_at }} as built_at
    {% if previous is not none -%}
    union all
    select max(previous_marks.built_at) as built_at
    from {{ previous }} as previous_marks
    where previous_marks.built_at < {{ built_at }}
    {%- endif %}

)

select built_at
from marks
where built_at is not null
