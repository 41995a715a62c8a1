"""Rendering: escaping, header injection, sandbox escapes and resource bounds, variables."""
from __future__ import annotations

import tracemalloc

import pytest

from notifications.exceptions import (
    HeaderInjection,
    MissingVariables,
    NotificationError,
    RenderLimitExceeded,
    TemplateDeclarationError,
    TemplateError,
    TemplateSyntaxProblem,
)
from notifications.authoring.rendering import VersionSource, check_declarations, render


def render_html(html: str, variables=None, *, subject="S", text="", required=(), optional=None, layout=""):
    return render(
        VersionSource(subject=subject, html_content=html, text_content=text, language="fr"),
        variables=variables or {},
        required=list(required),
        optional=optional or {},
        layout_name=layout,
    )


def test_html_variables_are_escaped_and_text_is_not():
    out = render_html(
        "<p>{{ v }}</p>", {"v": "<script>alert(1)</script>"}, text="T {{ v }}", required=["v"]
    )
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert out.text.strip() == "T <script>alert(1)</script>"


@pytest.mark.parametrize("value", ["x\r\nBcc: y", "x\nBcc: y", "x\rBcc: y", "x\u2028Bcc: y"])
def test_line_break_in_subject_variable_is_refused(value):
    with pytest.raises(HeaderInjection) as info:
        render_html("<p>x</p>", {"s": value}, subject="Re: {{ s }}", required=["s"])
    assert info.value.field == "subject"


ESCAPES = {
    "mro": "{{ ''.__class__.__mro__ }}",
    "cycler_globals": "{{ cycler.__init__.__globals__ }}",
    "lipsum_globals": "{{ lipsum.__globals__ }}",
    "attr_filter": "{{ ''|attr('__class__') }}",
    "attr_chain": "{{ (''|attr('__class__')|attr('__mro__'))[1].__subclasses__() }}",
    "format_escape": "{{ '{0.__class__}'.format('') }}",
    "self": "{{ self.__init__.__globals__ }}",
    "namespace": "{{ namespace.__init__.__globals__ }}",
}


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_sandbox_escapes_fail_with_our_error_and_leak_nothing(source):
    with pytest.raises(NotificationError) as info:
        render_html(source)
    assert isinstance(info.value, TemplateError)
    message = str(info.value)
    for leak in ("<class", "object at 0x", "__builtins__", "os.", "subprocess", "function", "module"):
        assert leak not in message, message


BOMBS = {
    "repeat": "{{ 'a' * 10**9 }}",
    "range_list": "{{ range(10**8)|list }}",
    "list_repeat": "{{ ['a'] * 10**9 }}",
    "huge_power": "{{ (10**1000)**1000 }}",
    "concat_doubling": "{% set ns = namespace(x='a') %}{% for i in range(80) %}"
    "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
    "map_join": "{{ range(100000)|map('center', 10000)|join }}",
    "references": "{% set l = ['a' * 1000000] * 100000 %}{{ l|length }}",
    "macro_nesting": "{% macro m(x) %}{{ x }}{{ x }}{% endmacro %}" + "{{ " + "m(" * 40 + "'ab'" + ")" * 40 + " }}",
    "padding": "{{ 'a'.ljust(10**9) }}",
    "format_width": "{{ '%0999999999d' % 1 }}",
    "format_star_width": "{{ '%*d' % (10**9, 1) }}",
    "format_nested_width": "{{ '{0:{1}}'.format('a', 10**9) }}",
    "format_keyword_width": "{{ '{x:>{w}}'.format(x='a', w=10**9) }}",
    "format_map_width": "{{ '{x:>{w}}'.format_map({'x': 'a', 'w': 10**9}) }}",
    "format_filter_width": "{{ '%*s'|format(10**9, 'a') }}",
    "batch_fill": "{{ [1]|batch(10**9, 'x')|list }}",
    "slice_count": "{{ [1]|slice(10**9)|list }}",
    "replace": "{{ ('a' * 100000).replace('a', 'b' * 10000) }}",
    "nested_loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "output_loop": "{% for a in range(100000) %}{{ 'x' * 10000 }}{% endfor %}",
}


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_resource_bombs_fail_with_our_error_without_exhausting_memory(source, settings):
    settings.TEMPLATE_RENDER_MAX_BYTES = 2 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(RenderLimitExceeded):
            render_html(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("operations, says", [
    (1_000_000, "TEMPLATE_RENDER_MAX_OPERATIONS"),  # each copy's elements count as operations
    (10**12, "in all"),  # without that budget, the values built in all are bounded too
])
def test_quadratic_work_is_refused(settings, operations, says):
    """Each step is small, but copying a growing list 100,000 times would take minutes."""
    settings.TEMPLATE_RENDER_MAX_BYTES = 2 * 1024 * 1024
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = operations
    with pytest.raises(RenderLimitExceeded, match=says):
        render_html(
            "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}"
        )


def test_missing_required_variables_are_all_named_at_once():
    with pytest.raises(MissingVariables) as info:
        render_html("{{ a }}{{ b }}{{ c }}", {"b": 1}, required=["a", "b", "c"])
    assert info.value.names == ["a", "c"]
    assert "a, c" in str(info.value)
    assert info.value.field == "variables"


def test_optional_variables_take_defaults_including_today():
    out = render_html(
        "<p>{{ when }}|{{ note }}</p>", {}, optional={"when": "{{ today }}", "note": "aucune"}
    )
    assert "aucune" in out.html
    when = out.html.split("<p>")[1].split("|")[0]
    assert len(when.split("/")) == 3  # French short date, e.g. 23/11/2026


def test_given_optional_value_wins_over_default():
    out = render_html("<p>{{ note }}</p>", {"note": "donnée"}, optional={"note": "aucune"})
    assert "donnée" in out.html


def test_text_part_is_generated_from_html_when_missing():
    out = render_html('<h1>Titre</h1><p>Voir <a href="https://x.test/a">le lien</a></p>')
    assert "Titre" in out.text
    assert "https://x.test/a" in out.text
    assert "<p>" not in out.text


def test_layout_wraps_body_with_product_name_preheader_and_inlined_css(settings):
    out = render(
        VersionSource(subject="Sujet", html_content="<p>Corps</p>", preheader="Aperçu {{ n }}", language="fr"),
        variables={"n": 1},
        required=["n"],
        optional={},
        layout_name="default",
    )
    assert settings.NOTIFICATIONS_PRODUCT_NAME in out.html
    assert "Aperçu 1" in out.html
    assert "<html" in out.html and out.html.index("Corps</p>") > out.html.index("Aperçu 1")  # inside the layout
    assert 'lang="fr"' in out.html
    assert settings.NOTIFICATIONS_PRODUCT_NAME in out.text


def test_undefined_names_fail_strictly():
    with pytest.raises(TemplateError):
        render_html("{{ missing_thing }}")


def test_syntax_errors_name_part_and_line():
    with pytest.raises(TemplateSyntaxProblem) as info:
        check_declarations({"html_content": "<p>\n{{ a </p>"}, required=["a"], optional={})
    assert "HTML" in str(info.value) and "line" in str(info.value)


def test_declarations_must_match_use_both_ways():
    with pytest.raises(TemplateDeclarationError) as info:
        check_declarations(
            {"subject": "{{ a }}", "html_content": "{{ b }} {{ _product_name }} {{ today }}"},
            required=["a", "c"],
            optional={"d": "x"},
        )
    message = str(info.value)
    assert "undeclared variables: b" in message
    assert "declared variables: c, d" in message


def test_declarations_ignore_loop_variables_and_macros():
    check_declarations(
        {
            "html_content": '{% from "components.html" import spacer %}'
            "{% for item in items %}{{ item }}{% endfor %}{% set total = items|length %}{{ total }}{{ spacer() }}"
        },
        required=["items"],
        optional={},
    )


@pytest.mark.django_db
def test_a_saved_version_is_compiled_once_and_the_compiled_template_reused():
    """Versions are immutable, so their compiled parts are cached under the version's id:
    the first send compiles them, every later render of that version reuses the same objects."""
    from notifications.authoring.rendering.environment import compile_part
    from notifications.authoring.rendering.sandbox import budget
    from notifications.channels.email.sending import send_mail_template
    from notifications.tests.factories import EmailTemplateFactory

    template = EmailTemplateFactory(versions={"fr": {
        "subject": "Bonjour {{ name }}", "html_content": "<p>Salut {{ name }}</p>", "text_content": "Salut {{ name }} !",
    }})
    version = template.versions.get()
    parts = {"subject": False, "html": True, "text": False}

    def cached() -> dict:
        # Asked under the version's id, the cache answers what the send compiled: not this source.
        return {part: compile_part("pas compilé", part=part, html=html, cache_key=version.pk)
                for part, html in parts.items()}

    [first] = send_mail_template(template.key, "awa@rgz.bj", {"name": "Awa"})
    compiled = cached()
    with budget(1024, max_operations=1000):  # guarded templates only render within a budget
        rendered = {part: t.render(name="Kofi") for part, t in compiled.items()}
    assert rendered == {
        "subject": "Bonjour Kofi", "html": "<p>Salut Kofi</p>", "text": "Salut Kofi !",
    }
    [second] = send_mail_template(template.key, "kofi@rgz.bj", {"name": "Kofi"})
    assert (first.subject, second.subject) == ("Bonjour Awa", "Bonjour Kofi")
    assert all(again is compiled[part] for part, again in cached().items())  # reused, not compiled again
    # An unsaved preview (no id) is compiled each time and never cached.
    assert compile_part("Aperçu", part="subject", html=False) is not compile_part("Aperçu", part="subject", html=False)
