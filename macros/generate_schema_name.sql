{#
    Custom schemas are used as named (staging, intermediate, marts, ...) rather than prefixed with
    the target schema, so analysts and BI tools see the same schema names on every target.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
