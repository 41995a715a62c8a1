"""A test-only pseudo-locale whose catalogue wraps every catalogue string as `⟦…⟧`.

Rendered under it, a page shows every string that went through gettext wrapped; whatever
else it shows is either data (template content, addresses, ids, dates, numbers) or a string
that never went through a catalogue: one that stays English in the French admin. Built at
test time from the msgids of our catalogue (locale/fr) and of the French catalogues of
Django and of every installed app (admin, auth, DRF…), compiled with polib into a temporary
LOCALE_PATHS entry, for the `django` and the `djangojs` domains (the admin's scripts write
text too: "0 of 2 selected").

The language is `en-xa` (Android's pseudo-locale): an English variant, so Django gives it no
fallback to the default language, and a string missing from the pseudo catalogue shows as
it was written, unwrapped.
"""
from __future__ import annotations

import re
from pathlib import Path

import polib
from django.apps import apps
from django.conf import settings

LANGUAGE = "en-xa"
LOCALE = "en_XA"
OPEN, CLOSE = "⟦", "⟧"
_INNERMOST = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")


def _catalogues(domain: str) -> list[Path]:
    """The French catalogues (.po where shipped, else .mo) of Django, the installed apps and ours."""
    roots = [Path(__import__("django").__file__).parent / "conf" / "locale"]
    roots += [Path(app.path) / "locale" for app in apps.get_app_configs()]
    roots += [Path(path) for path in settings.LOCALE_PATHS]
    found = []
    for root in roots:
        po, mo = root / "fr" / "LC_MESSAGES" / f"{domain}.po", root / "fr" / "LC_MESSAGES" / f"{domain}.mo"
        if po.exists():
            found.append(po)
        elif mo.exists():
            found.append(mo)
    return found


def wrap(text: str) -> str:
    return f"{OPEN}{text}{CLOSE}"


def build(folder: Path) -> Path:
    """Write `<folder>/en_XA/LC_MESSAGES/{django,djangojs}.mo`; return `folder`, for LOCALE_PATHS."""
    target = folder / LOCALE / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    for domain in ("django", "djangojs"):
        pseudo = polib.POFile()
        pseudo.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
        seen: set[tuple[str | None, str]] = set()
        for path in _catalogues(domain):
            source = polib.pofile(str(path)) if path.suffix == ".po" else polib.mofile(str(path))
            for entry in source:
                key = (entry.msgctxt, entry.msgid)
                if not entry.msgid or key in seen or entry.obsolete:
                    continue
                seen.add(key)
                if entry.msgid_plural:
                    pseudo.append(polib.POEntry(
                        msgctxt=entry.msgctxt, msgid=entry.msgid, msgid_plural=entry.msgid_plural,
                        msgstr_plural={0: wrap(entry.msgid), 1: wrap(entry.msgid_plural)},
                    ))
                else:
                    pseudo.append(polib.POEntry(msgctxt=entry.msgctxt, msgid=entry.msgid, msgstr=wrap(entry.msgid)))
        pseudo.save_as_mofile(str(target / f"{domain}.mo"))
    return folder


def unwrapped(text: str) -> str:
    """`text` without its wrapped parts (nested ones included: a wrapped label inside a wrapped sentence)."""
    while True:
        shorter = _INNERMOST.sub(" ", text)
        if shorter == text:
            return text
        text = shorter
