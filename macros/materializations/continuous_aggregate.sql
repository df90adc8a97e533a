{#
    Materialization `continuous_aggregate`: a TimescaleDB continuous aggregate where the target has
    TimescaleDB's full edition (timescaledb.license = 'timescale', extension installed in the target
    database), else the incremental materialization over the same model file (DuckDB, plain PostgreSQL,
    the Apache edition). The model's SQL decides its shape with `mwh_continuous_aggregate_enabled()`
    (see macros/market/rollups.sql): one select over a hypertable for the aggregate, the incremental
    query otherwise.

    Model config (all optional):
      refresh_policy:   {start_offset: "null" | "'30 days'", end_offset: same, schedule_interval: "'1 hour'",
                         buckets_per_batch: 0}
                        offsets are SQL interval literals or null (null = the whole history / up to now);
                        buckets_per_batch 0 refreshes the window in one batch (TimescaleDB's default, 1
                        bucket a batch, takes a minute for 17k 5-minute buckets)
      materialized_only: false (default: real-time aggregation, not-yet-materialized bars show) | true
      compress_after:    "'30 days'"  compress the aggregate's chunks older than this (needs a start_offset)
      retention:         "'5 years'"  drop the aggregate's chunks older than this
      refresh_timeout_seconds: 300   how long a run waits for the refresh it triggers

    A run creates the aggregate (first run, --full-refresh, or a changed definition: the md5 of the
    compiled SQL is kept in the view's comment and compared), (re)applies the policies, then refreshes
    (mwh_refresh_continuous_aggregate). TimescaleDB refuses refresh_continuous_aggregate() inside a
    transaction block: with the profile's `autocommit: true` it is called between dbt's transactions;
    without it, the run asks the scheduler to start the policy's job now and waits for it to finish.
#}

{% macro mwh_timescaledb_full() -%}
    {#- True when the target database runs TimescaleDB's full edition with the extension installed.
        var `mwh_continuous_aggregates: false` (or `timescaledb: false`) forces the fallback. -#}
    {%- if target.type != 'postgres' or not execute -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- set forced = var('mwh_continuous_aggregates', none) -%}
    {%- if forced is not none and forced not in [true, 'true', 'True', 1, '1'] -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- if var('timescaledb', none) is not none and var('timescaledb') not in [true, 'true', 'True', 1, '1'] -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- set result = run_query(
        "select coalesce(current_setting('timescaledb.license', true), '') = 'timescale'"
        ~ " and exists (select 1 from pg_extension where extname = 'timescaledb')") -%}
    {%- do return(result.columns[0].values()[0] in [true, 'true', 'True', 1]) -%}
{%- endmacro %}


{% macro mwh_continuous_aggregate_enabled() -%}
    {#- Is the model being compiled a continuous aggregate on this target? -#}
    {%- do return(execute and model.config.materialized == 'continuous_aggregate' and mwh_timescaledb_full()) -%}
{%- endmacro %}


{% macro mwh_continuous_aggregate_info(relation) -%}
    {#- {'exists': bool, 'md5': the definition hash kept in its comment or ''}. -#}
    {%- set result = run_query(
        "select coalesce(obj_description(format('%I.%I', view_schema, view_name)::regclass, 'pg_class'), '')"
        ~ " from timescaledb_information.continuous_aggregates"
        ~ " where view_schema = '" ~ relation.schema ~ "' and view_name = '" ~ relation.identifier ~ "'") -%}
    {%- if result.rows | length == 0 -%}
        {%- do return({'exists': false, 'md5': ''}) -%}
    {%- endif -%}
    {%- set comment = result.columns[0].values()[0] -%}
    {%- set md5 = comment.split('mwh:definition_md5=')[-1][:32] if 'mwh:definition_md5=' in comment else '' -%}
    {%- do return({'exists': true, 'md5': md5}) -%}
{%- endmacro %}


{% macro mwh_drop_continuous_aggregate(relation) -%}
    {#- Views reading it go with it (cascade): dbt's relation cache must forget
        them too, or their own build would try to swap out a view that is gone. -#}
    {%- set dependents = run_query(
        "select distinct n.nspname, c.relname from pg_depend as d"
        ~ " inner join pg_rewrite as r on d.objid = r.oid"
        ~ " inner join pg_class as c on r.ev_class = c.oid"
        ~ " inner join pg_namespace as n on c.relnamespace = n.oid"
        ~ " where d.refobjid = '" ~ relation.schema ~ "." ~ relation.identifier ~ "'::regclass"
        ~ " and c.oid <> d.refobjid and n.nspname not like '%timescaledb%'") -%}
    {% call statement('drop_continuous_aggregate') -%}
        drop materialized view if exists {{ relation }} cascade
    {%- endcall %}
    {%- for row in dependents.rows -%}
        {% do adapter.cache_dropped(api.Relation.create(database=relation.database, schema=row[0], identifier=row[1], type='view')) %}
    {%- endfor -%}
    {% do adapter.cache_dropped(relation) %}
{%- endmacro %}


{% macro mwh_continuous_aggregate_job_id(relation) -%}
    {%- set result = run_query(
        "select job_id from timescaledb_information.jobs"
        ~ " where proc_name = 'policy_refresh_continuous_aggregate'"
        ~ " and hypertable_schema = '" ~ relation.schema ~ "' and hypertable_name = '" ~ relation.identifier ~ "'") -%}
    {%- do return(result.columns[0].values()[0] if result.rows | length else none) -%}
{%- endmacro %}


{% macro mwh_query_in_transaction(sql) -%}
    {#- run_query() without dbt's auto-begin cannot be committed by adapter.commit(): this one can. -#}
    {% call statement('mwh_query_in_transaction', fetch_result=True, auto_begin=True) -%}
        {{ sql }}
    {%- endcall %}
    {%- do return(load_result('mwh_query_in_transaction').table) -%}
{%- endmacro %}


{% macro mwh_refresh_continuous_aggregate(relation, timeout_seconds=300, whole_history=false) -%}
    {#- Refresh the aggregate now, over the refresh policy's window (whole_history: from the beginning).
        With the profile's `autocommit: true` (profiles.example.yml) the connection has no transaction
        between dbt's COMMIT and its next BEGIN (dbt_project.yml keeps both: flag
        postgres_skip_autocommit_transaction_statements false), so refresh_continuous_aggregate() is
        called there and returns when the refresh is done. Without it (a profile of one's own), the refresh
        policy's job is started through the scheduler and waited for, which adds the scheduler's start
        delay (0.3-5 s measured) to every run. -#}
    {%- if target.get('autocommit') -%}
        {%- set policy = config.get('refresh_policy', {}) or {} -%}
        {%- set bounds = [] -%}
        {%- for offset in ([none] if whole_history else [policy.get('start_offset')]) + [policy.get('end_offset')] -%}
            {%- do bounds.append('null' if offset in [none, '', 'null'] else 'now() - ' ~ offset ~ '::interval') -%}
        {%- endfor -%}
        {#- the policy's batching (0: one pass), not a manual refresh's default of ten buckets a batch: at 5M
            daily bars the whole-history refresh of the 5-minute aggregate took 13 min in batches -#}
        {%- set buckets_per_batch = policy.get('buckets_per_batch', 0) | int -%}
        {% call statement('refresh_continuous_aggregate', auto_begin=False) -%}
            call refresh_continuous_aggregate('{{ relation }}', {{ bounds | join(', ') }},
                options => '{"buckets_per_batch": {{ buckets_per_batch }}}'::jsonb)
        {%- endcall %}
        {{ log(relation ~ ": refreshed (" ~ bounds | join(', ') ~ "; buckets_per_batch " ~ buckets_per_batch ~ ")",
               info=false) }}
    {%- else -%}
        {% do mwh_refresh_continuous_aggregate_via_job(relation, timeout_seconds, whole_history) %}
    {%- endif -%}
{%- endmacro %}


{% macro mwh_refresh_continuous_aggregate_via_job(relation, timeout_seconds=300, whole_history=false) -%}
    {#- Start the refresh policy's job now (through the scheduler) and wait for that run to end.
        whole_history: this one run refreshes from the beginning (a new or rebuilt aggregate), whatever
        the policy's start_offset; the policy's own window is put back afterwards. -#}
    {%- set job_id = mwh_continuous_aggregate_job_id(relation) -%}
    {%- if job_id is none -%}
        {{ exceptions.raise_compiler_error(relation ~ ": no refresh policy job to refresh it with") }}
    {%- endif -%}
    {%- set policy_config = mwh_query_in_transaction("select config::text from timescaledb_information.jobs"
                                                     ~ " where job_id = " ~ job_id).columns[0].values()[0] -%}
    {%- set kicked = mwh_query_in_transaction("select clock_timestamp()::text as t, (alter_job(" ~ job_id
                               ~ ", next_start => clock_timestamp()"
                               ~ (", config => config || '{\"start_offset\": null}'::jsonb" if whole_history else "")
                               ~ ")).job_id from timescaledb_information.jobs where job_id = " ~ job_id).columns[0].values()[0] -%}
    {%- do adapter.commit() -%}
    {%- set state = namespace(done=false, status='', polls=0) -%}
    {%- for i in range((timeout_seconds * 4) | int) -%}
        {%- if not state.done -%}
            {%- set row = mwh_query_in_transaction(
                "select pg_sleep(0.25) is null as slept, s.job_status, s.last_run_status,"
                ~ " s.last_run_started_at >= '" ~ kicked ~ "'::timestamptz as started,"
                ~ " s.last_run_started_at >= '" ~ kicked ~ "'::timestamptz and s.job_status <> 'Running'"
                ~ " and s.last_run_duration is not null as finished"
                ~ " from timescaledb_information.job_stats as s where s.job_id = " ~ job_id).rows[0] -%}
            {%- set state.polls = state.polls + 1 -%}
            {%- if row['finished'] -%}
                {%- set state.done = true -%}
                {%- set state.status = row['last_run_status'] -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if whole_history -%}
        {%- do mwh_query_in_transaction("select (alter_job(" ~ job_id ~ ", config => $mwh$" ~ policy_config ~ "$mwh$::jsonb)).job_id") -%}
    {%- endif -%}
    {%- do adapter.commit() -%}
    {%- if not state.done -%}
        {{ exceptions.raise_compiler_error(relation ~ ": its refresh job " ~ job_id ~ " did not finish within "
            ~ timeout_seconds ~ "s (are TimescaleDB background workers available? see timescaledb_information.job_stats)") }}
    {%- endif -%}
    {%- if state.status != 'Success' -%}
        {%- set err = run_query("select coalesce(max(err_message), '?') from timescaledb_information.job_errors"
                                ~ " where job_id = " ~ job_id ~ " and start_time >= '" ~ kicked ~ "'::timestamptz") -%}
        {%- set message = err.columns[0].values()[0] -%}
        {%- set hint = " (a known fault of TimescaleDB 2.29.2 on PostgreSQL 17.12: every background job ends so;"
                       ~ " build it with scripts/patches/timescaledb-2.29.2, as scripts/timescaledb.sh does)"
                       if 'while it is being set up' in message else "" -%}
        {{ exceptions.raise_compiler_error(relation ~ ": refresh job " ~ job_id ~ " ended " ~ state.status
            ~ ": " ~ message ~ hint) }}
    {%- endif -%}
    {{ log(relation ~ ": refreshed by job " ~ job_id, info=false) }}
{%- endmacro %}


{% macro mwh_continuous_aggregate_policies(relation, rebuilt) -%}
    {%- set refresh = config.get('refresh_policy', {}) or {} -%}
    {%- set compress_after = config.get('compress_after', none) -%}
    {%- set retention = config.get('retention', none) -%}
    select remove_continuous_aggregate_policy('{{ relation }}', if_exists => true);
    {#- the job's first run one interval from now, not at once: the run refreshes the aggregate itself right
        after this, and whichever of two refreshes of one aggregate starts second fails -#}
    select add_continuous_aggregate_policy('{{ relation }}',
        start_offset => {{ refresh.get('start_offset', 'null') or 'null' }}::interval,
        end_offset => {{ refresh.get('end_offset', 'null') or 'null' }}::interval,
        schedule_interval => {{ refresh.get('schedule_interval', "'1 hour'") }}::interval,
        initial_start => now() + {{ refresh.get('schedule_interval', "'1 hour'") }}::interval,
        buckets_per_batch => {{ refresh.get('buckets_per_batch', 0) }});
    {% if compress_after -%}
    alter materialized view {{ relation }} set (timescaledb.compress = true);
    select remove_compression_policy('{{ relation }}', if_exists => true);
    select add_compression_policy('{{ relation }}', compress_after => {{ compress_after }}::interval);
    {%- elif not rebuilt -%}
    select remove_compression_policy('{{ relation }}', if_exists => true);
    {%- endif %}
    select remove_retention_policy('{{ relation }}', if_exists => true);
    {% if retention -%}
    select add_retention_policy('{{ relation }}', drop_after => {{ retention }}::interval);
    {%- endif %}
{%- endmacro %}


{% materialization continuous_aggregate, adapter='duckdb' %}
    {{ return(materialization_incremental_duckdb()) }}
{% endmaterialization %}


{% materialization continuous_aggregate, default %}
    {{ return(materialization_incremental_default()) }}
{% endmaterialization %}


{% materialization continuous_aggregate, adapter='postgres' %}

    {%- if not mwh_timescaledb_full() -%}
        {%- set stale = mwh_continuous_aggregate_info(this) if mwh_timescaledb_enabled() else {'exists': false} -%}
        {%- if stale['exists'] -%}
            {#- a continuous aggregate left by an earlier build: the incremental table replaces it -#}
            {% do mwh_drop_continuous_aggregate(this) %}
            {% do adapter.commit() %}
        {%- endif -%}
        {{ return(materialization_incremental_default()) }}
    {%- endif -%}

    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set info = mwh_continuous_aggregate_info(this) -%}
    {%- set definition_md5 = local_md5(sql) -%}
    {%- set full_refresh = should_full_refresh() -%}
    {%- set changed = info['exists'] and info['md5'] != definition_md5 -%}
    {%- set rebuild = full_refresh or not info['exists'] or changed -%}
    {%- if changed and not full_refresh -%}
        {{ log(this ~ ": the continuous aggregate's definition changed (md5 " ~ (info['md5'] or 'unknown') ~ " -> "
               ~ definition_md5 ~ "): rebuilding it", info=true) }}
    {%- endif -%}
    {%- set materialized_only = config.get('materialized_only', false) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if rebuild -%}
        {%- if info['exists'] -%}
            {% do mwh_drop_continuous_aggregate(this) %}
        {%- elif existing_relation is not none -%}
            {#- the incremental table of an earlier build (before the full edition) -#}
            {% do adapter.drop_relation(existing_relation) %}
        {%- endif -%}
        {% call statement('main') -%}
            create materialized view {{ target_relation }}
            with (timescaledb.continuous, timescaledb.materialized_only = {{ materialized_only | string | lower }}) as
            {{ sql }}
            with no data
        {%- endcall %}
    {%- else -%}
        {% call statement('main') -%}
            alter materialized view {{ target_relation }} set (timescaledb.materialized_only = {{ materialized_only | string | lower }})
        {%- endcall %}
    {%- endif -%}

    {% call statement('policies') -%}
        {{ mwh_continuous_aggregate_policies(target_relation, rebuild) }}
    {%- endcall %}

    {% do apply_grants(target_relation, config.get('grants'), should_revoke=should_revoke(existing_relation, full_refresh_mode=rebuild)) %}
    {% do persist_docs(target_relation, model) %}
    {%- set description = (model.description or '') ~ '\n\n' if config.persist_relation_docs() else '' -%}
    {% call statement('definition_md5') -%}
        comment on view {{ target_relation }} is $mwh${{ description }}mwh:definition_md5={{ definition_md5 }}$mwh$
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.commit() %}

    {% do mwh_refresh_continuous_aggregate(target_relation, config.get('refresh_timeout_seconds', 300), whole_history=rebuild) %}

    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
