{#
    The standard normal distribution in plain SQL (ln, exp, sqrt only), identical on DuckDB, TimescaleDB
    and PostgreSQL, for parametric VaR/CVaR and Kupiec's test (chi-square with 1 degree of freedom).
#}

{#- Lower-tail probability Phi(x) of the standard normal, to double precision: Hart's algorithm 5666 as
    given by G. West, "Better approximations to cumulative normal functions" (2005). `x` is repeated:
    pass a column or a parenthesised expression. -#}
{% macro mwh_norm_cdf(x) -%}
    {%- set ax = 'abs(' ~ x ~ ')' -%}
    (case
        when {{ ax }} > 37 then 0.0
        when {{ ax }} < 7.07106781186547 then
            exp(-{{ ax }} * {{ ax }} / 2)
            * ((((((0.0352624965998911 * {{ ax }} + 0.700383064443688) * {{ ax }} + 6.37396220353165)
                * {{ ax }} + 33.912866078383) * {{ ax }} + 112.079291497871) * {{ ax }} + 221.213596169931)
                * {{ ax }} + 220.206867912376)
            / (((((((0.0883883476483184 * {{ ax }} + 1.75566716318264) * {{ ax }} + 16.064177579207)
                * {{ ax }} + 86.7807322029461) * {{ ax }} + 296.564248779674) * {{ ax }} + 637.333633378831)
                * {{ ax }} + 793.826512519948) * {{ ax }} + 440.413735824752)
        else
            exp(-{{ ax }} * {{ ax }} / 2)
            / ({{ ax }} + 1 / ({{ ax }} + 2 / ({{ ax }} + 3 / ({{ ax }} + 4 / ({{ ax }} + 0.65)))))
            / 2.506628274631
    end) * (case when ({{ x }}) > 0 then -1 else 1 end) + (case when ({{ x }}) > 0 then 1 else 0 end)
{%- endmacro %}

{#- Standard normal density phi(x). -#}
{% macro mwh_norm_pdf(x) -%}
    (exp(-({{ x }}) * ({{ x }}) / 2) / sqrt(2 * pi()))
{%- endmacro %}

{#- First guess of the quantile Phi^-1(p) for a literal 0 < p < 1: P. J. Acklam's rational approximation
    (relative error below 1.2e-9). mwh_norm_ppf refines it with one Halley step to double precision. -#}
{% macro mwh_norm_ppf_acklam(p) -%}
    {%- set p = p | float -%}
    {%- set a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690,
                 -30.66479806614716, 2.506628277459239] -%}
    {%- set b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
                 -13.28068155288572] -%}
    {%- set c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
                 4.374664141464968, 2.938163982698783] -%}
    {%- set d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416] -%}
    {%- if p < 0.02425 or p > 1 - 0.02425 -%}
        {%- set q = 'sqrt(-2 * ln(' ~ (p if p < 0.5 else 1 - p) ~ '))' -%}
        {{ '-' if p > 0.5 else '' }}(((((({{ c[0] }} * {{ q }} + {{ c[1] }}) * {{ q }} + {{ c[2] }}) * {{ q }}
            + {{ c[3] }}) * {{ q }} + {{ c[4] }}) * {{ q }} + {{ c[5] }})
        / (((({{ d[0] }} * {{ q }} + {{ d[1] }}) * {{ q }} + {{ d[2] }}) * {{ q }} + {{ d[3] }}) * {{ q }} + 1))
    {%- else -%}
        {%- set q = p - 0.5 -%}
        {%- set r = q * q -%}
        {{ ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)) }}
    {%- endif -%}
{%- endmacro %}

{#- One Halley step x - u / (1 + x u / 2), u = (Phi(x) - p) sqrt(2 pi) exp(x^2 / 2), from a first guess
    `x` (a column) towards Phi^-1(p). -#}
{% macro mwh_norm_ppf_refine(x, p) -%}
    ({{ x }} - (({{ mwh_norm_cdf(x) }}) - {{ p }}) * sqrt(2 * pi()) * exp({{ x }} * {{ x }} / 2)
        / (1 + {{ x }} * (({{ mwh_norm_cdf(x) }}) - {{ p }}) * sqrt(2 * pi()) * exp({{ x }} * {{ x }} / 2) / 2))
{%- endmacro %}

{#- Upper-tail probability of a chi-square with 1 degree of freedom at `x` >= 0: 2 (1 - Phi(sqrt(x))),
    computed as 2 Phi(-sqrt(x)) so small tails keep their precision. -#}
{% macro mwh_chi2_1_sf(x) -%}
    {%- set root = '(-sqrt(greatest(' ~ x ~ ', 0)))' -%}
    (2 * {{ mwh_norm_cdf(root) }})
{%- endmacro %}
