"""The translation catalogues: committed `.mo` files match their `.po`, and every string our code
marks for translation is translated into French (and listed in the English catalogue).

Strings are found the way `makemessages` finds them, without needing GNU gettext here: the
first literal argument of every `_()`, `gettext()`, `gettext_lazy()` or `ngettext()` call.
"""
from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from notifications.management.commands.compile_catalogues import catalogues, compiled

SOURCES = Path(settings.BASE_DIR, "notifications")
CATALOGUE = Path(settings.BASE_DIR, "locale", "{language}", "LC_MESSAGES", "django.po")
TRANSLATORS = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def marked_strings() -> dict[str, str]:
    """msgid → where it is marked, for every translated literal in our code (tests excluded)."""
    found: dict[str, str] = {}
    for path in sorted(SOURCES.rglob("*.py")):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TRANSLATORS):
                continue
            literals = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if node.func.id.startswith("pgettext"):
                literals = literals[1:]
            for literal in literals[: 2 if node.func.id.startswith("ngettext") else 1]:
                found.setdefault(literal, f"{path.relative_to(settings.BASE_DIR)}:{node.lineno}")
    return found


def test_both_catalogues_exist_and_django_reads_them():
    assert [str(path.relative_to(settings.BASE_DIR)) for path in catalogues()] == [
        "locale/en/LC_MESSAGES/django.po", "locale/fr/LC_MESSAGES/django.po",
    ]
    assert Path(settings.BASE_DIR, "locale") in map(Path, settings.LOCALE_PATHS)


@pytest.mark.parametrize("po_path", catalogues(), ids=lambda path: path.parts[-3])
def test_each_committed_mo_is_its_po_compiled(po_path):
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path} is missing: run `python manage.py compile_catalogues`"
    assert mo_path.read_bytes() == compiled(po_path), (
        f"{mo_path} does not match {po_path.name}: run `python manage.py compile_catalogues` and commit both"
    )
    # And gettext reads from it exactly what the .po says.
    with mo_path.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)._catalog
    for entry in polib.pofile(str(po_path)).translated_entries():
        if not entry.msgid_plural:
            assert catalogue[entry.msgid] == entry.msgstr


def test_compile_catalogues_check_fails_on_a_stale_mo(tmp_path, settings):
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "django.po").write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                                      'msgid "Edit"\nmsgstr "Modifier"\n')
    settings.LOCALE_PATHS = [tmp_path]
    with pytest.raises(CommandError, match="compile_catalogues"):
        call_command("compile_catalogues", "--check")
    call_command("compile_catalogues", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("compile_catalogues", "--check")
    (folder / "django.po").write_text((folder / "django.po").read_text().replace("Modifier", "Éditer"))
    with pytest.raises(CommandError, match="compile_catalogues"):
        call_command("compile_catalogues", "--check")


def test_every_marked_string_is_translated_into_french():
    marked = marked_strings()
    assert len(marked) > 200  # the extraction works: admin, models, errors
    french = {entry.msgid: entry for entry in polib.pofile(str(CATALOGUE).format(language="fr"))}
    plural_ids = {entry.msgid_plural for entry in french.values() if entry.msgid_plural}
    missing = {msgid: where for msgid, where in marked.items()
               if msgid not in plural_ids and (msgid not in french or not french[msgid].translated())}
    assert not missing, "Not in locale/fr/LC_MESSAGES/django.po (run makemessages, translate, compile):\n" + "\n".join(
        f"  {where}: {msgid!r}" for msgid, where in missing.items()
    )


def test_every_marked_string_is_in_the_english_catalogue():
    english = {entry.msgid for entry in polib.pofile(str(CATALOGUE).format(language="en"))}
    english |= {entry.msgid_plural for entry in polib.pofile(str(CATALOGUE).format(language="en")) if entry.msgid_plural}
    assert not set(marked_strings()) - english


@pytest.mark.parametrize("language", ["fr", "en"])
def test_translations_keep_every_placeholder(language):
    """A translation that drops or renames `%(name)s` would raise KeyError, or lose a value, at run time."""
    for entry in polib.pofile(str(CATALOGUE).format(language=language)).translated_entries():
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(entry.msgid)), (entry.msgid, text)
