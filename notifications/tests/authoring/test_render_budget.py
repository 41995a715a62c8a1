"""Issue 8: render work is bounded in operations (TEMPLATE_RENDER_MAX_OPERATIONS), never in seconds.

Templates that produce nothing and build nothing (a macro calling itself twice per level,
loops inside loops) passed every size limit and kept a server busy for minutes. They are
refused on save (API `PUT`, the admin, the fixtures) and, when only a send's variables make
the work explode, the send is a 400 with nothing written. What counts is operations, so
the outcome is the same on an idle machine and a busy one: no test here looks at a clock.
"""
from __future__ import annotations

import contextlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from notifications.exceptions import RenderLimitExceeded, TemplateError
from notifications.access.groups import SENDERS, TEMPLATE_EDITORS
from notifications.models import Message, EmailTemplate
from notifications.authoring.rendering import VersionSource, render, sandbox
from notifications.tests.factories import EmailTemplateFactory
from notifications.tests.support import large_templates
from notifications.tests.support.api import ApiClient, create_key, make_user

SETTING = "TEMPLATE_RENDER_MAX_OPERATIONS"
DOUBLING = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
#: Each produces no output (or one character per leaf) and builds nothing large.
BOMBS = {
    "doubling_f20": DOUBLING + "{{ f(20) }}",
    "doubling_f30": DOUBLING + "{{ f(30) }}",
    "doubling_char_per_leaf": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% else %}x{% endif %}"
                              "{% endmacro %}{{ f(23) }}",
    "deep_recursion": "{% macro r(n) %}{% if n %}{{ r(n-1) }}{% endif %}{% endmacro %}{{ r(1000000) }}",
    "call_block_recursion": "{% macro r(n) %}{% if n %}{% call r(n-1) %}{% endcall %}{% endif %}{{ caller() }}"
                            "{% endmacro %}{% call r(1000000) %}{% endcall %}",
    "recursive_loop": "{% set ns = namespace(t=[]) %}{% for i in range(200) %}{% set ns.t = [ns.t] %}{% endfor %}"
                      "{% for n in [ns.t] recursive %}{{ loop(n) }}{% endfor %}",
    "loops_1000x1000": "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "loops_1000x1000x1000": "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
                            "{% endfor %}{% endfor %}{% endfor %}",
    "loops_100_four_deep": "{% for a in range(100) %}{% for b in range(100) %}{% for c in range(100) %}"
                           "{% for d in range(100) %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}",
    "loop_filtered_out": "{% for a in range(100000) %}{% for b in range(100000) if b < 0 %}{% endfor %}{% endfor %}",
    "ifs_that_call_nothing": "{% macro m() %}" + "{% if false %}{% endif %}" * 2000 + "{% endmacro %}"
                             "{% for a in range(10000) %}{{ m() }}{% endfor %}",
    "sorting_in_a_loop": "{% for a in range(1000) %}{% set x = range(100000)|list|sort %}{% endfor %}",
    "max_of_long_text_in_a_loop": "{% set s = 'abcdefghij' * 100000 %}{% for a in range(1000) %}"
                                  "{% set x = s|max %}{% endfor %}",
    "membership_in_a_long_list": "{% set l = range(100000)|list %}{% for i in range(100000) %}"
                                 "{% if -1 in l %}{% endif %}{% endfor %}",
    "comparing_long_lists": "{% set l = range(100000)|list %}{% set m = range(100000)|list %}"
                            "{% for i in range(100000) %}{% if l == m %}{% endif %}{% endfor %}",
    "slicing_a_long_list": "{% set l = range(100000)|list %}{% for i in range(100000) %}{% set x = l[::-1] %}"
                           "{% endfor %}",
    "scanning_a_long_text": "{% set s = 'ab' * 1000000 %}{% for i in range(100000) %}{% set x = s.count('c') %}"
                            "{% endfor %}",
    "searching_a_long_list": "{% set l = range(100000)|list %}{% for i in range(100000) %}"
                             "{% set x = l.index(99999) %}{% endfor %}",
    "chained_lazy_maps": "{% for a in range(1000) %}{% set x = range(100000)" + "|map(attribute='real')" * 50
                         + "|max %}{% endfor %}",
}
#: Templates that stop at the call depth (each level is cheap, the stack is not).
DEEP = {"deep_recursion", "call_block_recursion", "recursive_loop"}


@contextlib.contextmanager
def counted():
    """The RenderBudget of every render inside the block, to read the operations counted."""
    budgets: list[sandbox.RenderBudget] = []
    original = sandbox.budget

    @contextlib.contextmanager
    def spy(*args, **kwargs):
        with original(*args, **kwargs) as current:
            budgets.append(current)
            yield current

    sandbox.budget = spy
    try:
        yield budgets
    finally:
        sandbox.budget = original


def render_html(html: str, variables=None, *, subject="S", text="", preheader="", required=(), layout=""):
    return render(
        VersionSource(subject=subject, html_content=html, text_content=text, preheader=preheader, language="fr"),
        variables=variables or {}, required=list(required), optional={}, layout_name=layout,
    )


def operations_of(html: str, **kwargs) -> int:
    with counted() as budgets:
        render_html(html, **kwargs)
    return budgets[-1].operations


def assert_names_the_budget_and_nothing_else(message: str) -> None:
    assert SETTING in message, message
    for leak in ("0x", "<", "Macro", "function", "object", "@"):
        assert leak not in message, message


# --- The sandbox -----------------------------------------------------------------------


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_work_that_produces_nothing_is_refused_by_the_operations_budget(source, settings):
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 1_000_000
    with counted() as budgets, pytest.raises(RenderLimitExceeded) as info:
        render_html(source)
    assert_names_the_budget_and_nothing_else(info.value.message)
    assert info.value.field == "template"
    [spent] = budgets
    if source not in {BOMBS[name] for name in DEEP}:
        # Stopped by the count (overshot by the last charge, paid before the work: a sort of
        # 100,000 elements, a million characters to walk), not by a size, a cap or a clock.
        assert spent.operations > settings.TEMPLATE_RENDER_MAX_OPERATIONS
        assert spent.iterations < spent.max_iterations and spent.work < 10 * spent.max_size
    else:
        assert spent.operations < settings.TEMPLATE_RENDER_MAX_OPERATIONS
        assert f"more than {sandbox.MAX_CALL_DEPTH} deep" in info.value.message


def test_the_refusal_point_is_a_count_the_setting_moves(settings):
    """Where a render is stopped depends on TEMPLATE_RENDER_MAX_OPERATIONS alone."""
    loops = "{% for a in range(n) %}{% for b in range(n) %}{% endfor %}{% endfor %}"
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 10**9
    needed = operations_of(loops, variables={"n": 300}, required=["n"])
    assert 2 * 300 * 300 <= needed < 3 * 300 * 300  # a drawn item and an (empty) body per iteration
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = needed
    render_html(loops, {"n": 300}, required=["n"])
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = needed - 1
    with pytest.raises(RenderLimitExceeded, match=SETTING):
        render_html(loops, {"n": 300}, required=["n"])


def test_one_budget_covers_subject_preheader_html_text_and_layout(settings):
    """Each part alone fits; together they do not: the count is per render, not per part."""
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 10**9
    loop = "{% for a in range(3000) %}{% endfor %}"
    parts = {"subject": "S" + loop, "preheader": "P" + loop, "html": "<p>H</p>" + loop, "text": "T" + loop}
    alone = {
        "subject": operations_of("<p>H</p>", subject=parts["subject"], text="T"),
        "preheader": operations_of("<p>H</p>", preheader=parts["preheader"], text="T"),
        "html": operations_of(parts["html"], text="T"),
        "text": operations_of("<p>H</p>", text=parts["text"]),
    }
    everything = operations_of(parts["html"], subject=parts["subject"], preheader=parts["preheader"],
                               text=parts["text"])
    with_layout = operations_of(parts["html"], subject=parts["subject"], preheader=parts["preheader"],
                                text=parts["text"], layout="default")
    assert everything > max(alone.values()) * 3
    assert with_layout > everything  # the layout's own work is counted in the same render
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = max(alone.values())
    render_html("<p>H</p>", subject=parts["subject"], text="T")
    render_html("<p>H</p>", preheader=parts["preheader"], text="T")
    render_html(parts["html"], text="T")
    render_html("<p>H</p>", text=parts["text"])
    with pytest.raises(RenderLimitExceeded, match=SETTING):
        render_html(parts["html"], subject=parts["subject"], preheader=parts["preheader"], text=parts["text"])


EXTRA_WORK = {
    "a function call": "{% set y = range(1) %}",
    "a method call": "{% set y = x.upper() %}",
    "a macro invocation": "{% macro m() %}{% endmacro %}{% set y = m() %}",
    "a filter": "{% set y = x|upper %}",
    "a test": "{% set y = x is string %}",
    "a loop iteration": "{% for a in [1] %}{% endfor %}",
    "an expression that calls nothing": "{% if x %}{% endif %}",
    "output": "{{ x }}",
    "more output": "{{ x }}" + "." * 1000,
}


@pytest.mark.parametrize("extra", EXTRA_WORK.values(), ids=EXTRA_WORK.keys())
def test_every_kind_of_work_counts(extra):
    base = operations_of("{% set y = 1 %}", variables={"x": "a"}, required=["x"])
    more = operations_of("{% set y = 1 %}" + extra, variables={"x": "a"}, required=["x"])
    assert more > base


def test_loop_iterations_calls_and_output_grow_the_count_linearly():
    def cost(n: int, body: str) -> int:
        return operations_of("{% for i in range(n) %}" + body + "{% endfor %}", variables={"n": n}, required=["n"])

    for body in ("", "{{ i }}", "{{ i|string|upper }}", "{% set y = range(i) %}"):
        one, hundred, thousand = cost(1, body), cost(100, body), cost(1000, body)
        per_iteration = (hundred - one) / 99
        # The same per iteration, give or take the output's digits (output counts by length).
        assert per_iteration >= 2 and abs((thousand - hundred) / 900 - per_iteration) < 0.1 * per_iteration, body


def test_python_recursion_limit_is_a_clean_refusal_naming_the_budget(monkeypatch):
    """Without the call-depth cap, Python's own limit still surfaces as our error, not a 500."""
    monkeypatch.setattr(sandbox, "MAX_CALL_DEPTH", 10**6)
    with pytest.raises(RenderLimitExceeded) as info:
        render_html(BOMBS["deep_recursion"])
    assert_names_the_budget_and_nothing_else(info.value.message)
    with pytest.raises(RenderLimitExceeded) as info:
        render_html("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    assert SETTING in info.value.message


def test_legitimate_recursion_within_the_call_depth_renders():
    tree = {"name": "root", "children": []}
    node = tree
    for depth in range(sandbox.MAX_CALL_DEPTH - 4):
        child = {"name": f"n{depth}", "children": []}
        node["children"].append(child)
        node = child
    html = "<ul>{% for n in [tree] recursive %}<li>{{ n.name }}{{ loop(n.children) }}</li>{% endfor %}</ul>"
    assert f"n{sandbox.MAX_CALL_DEPTH - 5}" in render_html(html, {"tree": tree}, required=["tree"]).html
    macro = "{% macro r(n) %}{% if n %}{{ n }}{{ r(n-1) }}{% endif %}{% endmacro %}{{ r(depth) }}"
    assert render_html(macro, {"depth": sandbox.MAX_CALL_DEPTH - 4}, required=["depth"]).html.endswith("21")
    with pytest.raises(RenderLimitExceeded, match=SETTING):
        render_html(macro, {"depth": sandbox.MAX_CALL_DEPTH + 1}, required=["depth"])


def test_internal_filters_cannot_take_operations_back():
    """The body charge is a filter no template can name; reached through map(), it only adds."""
    base = operations_of("{% set y = [1]|list %}")
    with_map = operations_of("{% set y = [-1000000000]|map('guard-tick')|list %}")
    assert with_map > base


# --- Legitimate templates pass with a wide margin --------------------------------------


@pytest.mark.django_db
def test_every_default_template_uses_under_a_hundredth_of_the_default_budget(default_templates, settings):
    from django.conf import settings as live

    budget = live.TEMPLATE_RENDER_MAX_OPERATIONS
    assert budget == 1_000_000  # the documented default (docs/CONTRACT.md)
    templates = list(EmailTemplate.objects.all())
    assert len(templates) == 9
    for template in templates:
        for version in template.versions.filter(is_active=True):
            with counted() as budgets:
                render(VersionSource.of(version), variables=template.sample_variables,
                       required=template.required_variables, optional=template.optional_variables,
                       layout_name=template.layout)
            assert budgets[-1].operations < budget // 100, (template.key, budgets[-1].operations)


def invoice(lines: int):
    return render(
        VersionSource(subject=large_templates.SUBJECT, preheader=large_templates.PREHEADER,
                      html_content=large_templates.HTML, text_content=large_templates.TEXT),
        variables=large_templates.invoice_variables(lines), required=large_templates.REQUIRED,
        optional={}, layout_name="default",
    )


def test_common_patterns_over_a_list_cost_in_proportion_to_its_length():
    """`items|length` and a small `in` inside a loop over `items` do not cost its square."""
    html = ("{% for item in items %}{{ loop.index }}/{{ items|length }} {{ item.name|title }}"
            "{% if item.kind in ['a', 'b'] %}*{% endif %}{% if item == items|last %}.{% endif %}{% endfor %}")

    def cost(n: int) -> int:
        items = [{"name": f"item {i}", "kind": "abc"[i % 3]} for i in range(n)]
        return operations_of(html, variables={"items": items}, required=["items"])

    assert cost(2000) < 2.2 * cost(1000) < 4.4 * cost(500)
    assert cost(1000) < 100_000


def test_a_1000_line_invoice_renders_within_a_quarter_of_the_budget(settings):
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 1_000_000
    with counted() as budgets:
        rendered = invoice(1000)
    assert "ART-00999" in rendered.html and "art-00999" in rendered.text
    assert rendered.subject == "Facture INV-2026-0420 — 1000 lignes"
    assert budgets[-1].operations < settings.TEMPLATE_RENDER_MAX_OPERATIONS // 4


def test_the_largest_invoice_the_size_limit_allows_is_within_the_budget(settings):
    """Such an invoice reaches TEMPLATE_RENDER_MAX_BYTES before TEMPLATE_RENDER_MAX_OPERATIONS."""
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 1_000_000
    settings.TEMPLATE_RENDER_MAX_BYTES = 2 * 1024 * 1024
    assert "ART-01899" in invoice(1900).html
    with pytest.raises(RenderLimitExceeded) as info:
        invoice(2100)
    assert "characters" in info.value.message and SETTING not in info.value.message


# --- Saving refuses a version over budget ----------------------------------------------

RMA_VARIABLES = "<p>{{ rma_number }} {{ serial_number }} {{ status }} {{ link_tracking }}</p>"
SAVED_BOMBS = ["doubling_f20", "doubling_f30", "deep_recursion", "loops_1000x1000", "loops_1000x1000x1000"]


@pytest.fixture
def editor(default_templates):
    return ApiClient(create_key(make_user("editor", TEMPLATE_EDITORS)))


@pytest.mark.django_db
@pytest.mark.parametrize("name", SAVED_BOMBS)
def test_put_of_a_version_over_budget_is_a_400_naming_the_budget(editor, name):
    path = "/api/v1/email/templates/rma_confirmation"
    versions = EmailTemplate.objects.get(key="rma_confirmation").versions
    before = list(versions.values_list("pk", "is_active"))

    response = editor.put(path, {"subject": "RMA {{ rma_number }}", "html_content": RMA_VARIABLES + BOMBS[name]})

    assert response.status_code == 400, response.content
    [message] = response.json()["template"]
    assert "sample variables" in message
    assert_names_the_budget_and_nothing_else(message)
    assert list(versions.values_list("pk", "is_active")) == before


@pytest.mark.django_db
def test_put_of_expressions_nested_too_deeply_to_parse_is_a_400_not_a_500(editor):
    versions = EmailTemplate.objects.get(key="rma_confirmation").versions
    for nested in ("{{ " + "(" * 3000 + "status" + ")" * 3000 + " }}", "{% if status %}" * 3000 + "{% endif %}" * 3000):
        response = editor.put("/api/v1/email/templates/rma_confirmation", {
            "subject": "RMA {{ rma_number }}",
            "html_content": "<p>{{ rma_number }} {{ serial_number }} {{ link_tracking }}</p>" + nested,
        })
        assert response.status_code == 400, response.content
        assert "too deeply" in response.json()["html_content"][0]
    assert versions.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("name", SAVED_BOMBS)
def test_the_admin_refuses_a_version_over_budget_as_a_form_error(admin_client, default_templates, name):
    template = EmailTemplate.objects.get(key="rma_confirmation")
    response = admin_client.post(reverse("admin:notifications_emailtemplateversion_add"), {
        "template": template.pk, "language": "fr", "subject": "RMA {{ rma_number }}",
        "html_content": RMA_VARIABLES + BOMBS[name], "text_content": "", "preheader": "",
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    shown = " ".join(message for messages in errors.values() for message in messages)
    assert_names_the_budget_and_nothing_else(shown)
    assert SETTING in response.content.decode()
    assert template.versions.count() == 1


@pytest.mark.django_db
def test_loading_fixtures_refuses_a_template_over_budget(tmp_path):
    folder = tmp_path / "bomb_template"
    (folder / "fr").mkdir(parents=True)
    (folder / "template.json").write_text(json.dumps({
        "key": "bomb_template", "name": "Bomb", "category": "other", "required_variables": ["name"],
        "sample_variables": {"name": "Awa"}, "default_language": "fr", "layout": "",
    }), encoding="utf-8")
    (folder / "fr" / "subject.txt").write_text("Bonjour {{ name }}", encoding="utf-8")
    (folder / "fr" / "body.html").write_text("<p>{{ name }}</p>" + BOMBS["doubling_f30"], encoding="utf-8")

    with pytest.raises(CommandError) as info:
        call_command("load_default_templates", dir=str(tmp_path), verbosity=0)

    assert "bomb_template" in str(info.value)
    assert_names_the_budget_and_nothing_else(str(info.value).replace("bomb_template", ""))
    assert not EmailTemplate.objects.filter(key="bomb_template").exists()


# --- A send whose variables blow the budget --------------------------------------------


@pytest.fixture
def pairs_template(db):
    """Valid, and cheap with its samples: its work grows with the square of a variable's length."""
    return EmailTemplateFactory(
        key="pairs", required_variables=["rows"], sample_variables={"rows": [1, 2, 3]},
        versions={"fr": {
            "subject": "{{ rows|length }} lignes",
            "html_content": "<p>{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}{{ rows|length }}</p>",
            "text_content": "",
        }},
    )


@pytest.mark.django_db
def test_a_send_whose_variables_exceed_the_budget_is_a_400_with_nothing_written(pairs_template, settings):
    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 1_000_000
    sender = ApiClient(create_key(make_user("svc", SENDERS)))
    body = {"to": "awa@rgz.bj", "template_key": "pairs"}

    fine = sender.post("/api/v1/email/send", {**body, "variables": {"rows": list(range(100))}})
    assert fine.status_code == 201, fine.content
    assert Message.objects.count() == 1

    response = sender.post("/api/v1/email/send", {**body, "variables": {"rows": list(range(1000))}})

    assert response.status_code == 400, response.content
    [message] = response.json()["template"]
    assert_names_the_budget_and_nothing_else(message)
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_the_service_raises_a_template_error_and_writes_nothing(pairs_template, settings):
    from notifications.channels.email.sending import send_mail_template

    settings.TEMPLATE_RENDER_MAX_OPERATIONS = 1_000_000
    with pytest.raises(TemplateError, match=SETTING):
        send_mail_template("pairs", ["awa@rgz.bj", "kofi@rgz.bj"], {"rows": list(range(1000))})
    assert not Message.objects.exists()
