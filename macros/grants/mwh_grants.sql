{#
    Grants (dbt_project.yml `+grants`) go only to roles that exist. `mwh roles` creates mwh_analyst on
    PostgreSQL/TimescaleDB; a server where it has not run yet builds as before and grants nothing (the
    skipped role is named in dbt's log). Overrides dbt's dispatch of `apply_grants` for postgres, hence
    the name without the mwh_ prefix.
#}
{% macro postgres__apply_grants(relation, grant_config, should_revoke=True) %}
    {%- set kept = {} -%}
    {%- if grant_config -%}
        {%- set wanted = [] -%}
        {%- for grantees in grant_config.values() -%}
            {%- do wanted.extend(grantees) -%}
        {%- endfor -%}
        {%- set existing = mwh_existing_roles(wanted | unique | list) -%}
        {%- for privilege, grantees in grant_config.items() -%}
            {%- set present = [] -%}
            {%- for grantee in grantees -%}
                {%- if grantee in existing -%}
                    {%- do present.append(grantee) -%}
                {%- else -%}
                    {%- do log('grants: role ' ~ grantee ~ ' does not exist (run `mwh roles`); ' ~ privilege
                               ~ ' on ' ~ relation ~ ' not granted to it') -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if present -%}
                {%- do kept.update({privilege: present}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ default__apply_grants(relation, kept, should_revoke) }}
{% endmacro %}


{% macro mwh_existing_roles(names) %}
    {%- if not names -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for name in names -%}
        {%- do quoted.append("'" ~ (name | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {%- set found = run_query('select rolname from pg_roles where rolname in (' ~ quoted | join(', ') ~ ')') -%}
    {{ return(found.columns[0].values() | list) }}
{% endmacro %}
