"""Jinja's own English error texts are said again in the editor's language (issue 19, part 2):
the variable, tag or line they name, in a sentence with no English inside the French."""
from __future__ import annotations

import pytest
from django.utils import translation

from notifications.exceptions import TemplateError, TemplateSecurityError, TemplateSyntaxProblem
from notifications.authoring.rendering.environment import compile_part
from notifications.authoring.rendering.renderer import VersionSource, render


def _render(html: str, **variables):
    return render(VersionSource(subject="Objet", html_content=html), variables=variables, required=list(variables),
                  optional={})


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", "Ligne 2 : 'customer_name' n’est pas défini : déclarez-le comme variable de la version"),
    ("en", "Line 2: 'customer_name' is not defined: declare it as a variable of the version"),
])
def test_an_undefined_name_is_named_with_its_line_in_the_language(language, expected):
    with translation.override(language), pytest.raises(TemplateError) as caught:
        _render("<p>Bonjour</p>\n<p>{{ customer_name }}</p>")
    assert caught.value.code == "undefined_name"
    assert expected in caught.value.message
    assert "is undefined" not in caught.value.message


def test_a_missing_field_of_a_value_is_named_in_french():
    with translation.override("fr"), pytest.raises(TemplateError) as caught:
        _render("{{ order.total }}", order={"id": 1})
    assert caught.value.message == "Ligne 1 : La valeur n’a pas de champ 'total'."


@pytest.mark.parametrize(("source", "french"), [
    ("{% if x %}oui", "le bloc 'if' n’est jamais fermé (attendu : elif, else, endif)."),
    ("{{ x }", "'}' inattendu : une balise, une expression ou une chaîne n’est pas fermée"),
    ("{% foo %}", "balise inconnue 'foo'"),
    ("{% if x %}{% endfor %}", "la balise 'endfor' ne ferme pas le bloc 'if' (attendu : elif, else, endif)."),
    ("{{ x|nosuch }}", "aucun filtre ne s’appelle 'nosuch'."),
    ("{{ x y }}", "une expression est incomplète ou contient un 'y' inattendu."),
])
def test_syntax_errors_are_ours_in_french(source, french):
    with translation.override("fr"), pytest.raises(TemplateSyntaxProblem) as caught:
        compile_part(source, part="html", html=True)
    assert "ligne 1" in caught.value.message
    assert french in caught.value.message
    for english in ("unexpected", "Encountered", "Jinja", "expected token", "No filter"):
        assert english not in caught.value.message


def test_a_python_error_keeps_only_its_name_inside_our_sentence():
    with translation.override("fr"), pytest.raises(TemplateError) as caught:
        _render("\n\n{{ 100 // (count|int) }}", count="0")
    assert caught.value.message == (
        "Ligne 3 : Le rendu du modèle a échoué : une opération sur ses valeurs est impossible (ZeroDivisionError).")


def test_a_sandbox_refusal_is_ours_in_french():
    with translation.override("fr"), pytest.raises(TemplateSecurityError) as caught:
        _render("{{ items.append(1) }}", items=[])
    assert "le modèle ne peut pas utiliser 'append'" in caught.value.message
    assert "unsafe" not in caught.value.message


def test_the_part_at_fault_is_named_in_french_too():
    with translation.override("fr"), pytest.raises(TemplateSyntaxProblem) as caught:
        compile_part("Facture {{ month }", part="subject", html=False)
    assert caught.value.message.startswith("Erreur de syntaxe (objet), ligne 1 : ")
    with translation.override("fr"), pytest.raises(TemplateSyntaxProblem) as caught:
        render(VersionSource(subject="Objet", html_content="<p>{{ x }}</p>"), variables={}, required=[],
               optional={"x": "{{ y }"})
    assert caught.value.message.startswith("Erreur de syntaxe (la valeur par défaut de x), ligne 1 : '}' inattendu")
