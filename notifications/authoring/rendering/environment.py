"""The two sandboxed environments (HTML, autoescaped; text) and the compile cache.

Layouts and macro files are read from `EMAIL_LAYOUTS_DIR`; template bodies come from the
database and are compiled once per version: versions are immutable and keyed by UUID, so
a compiled template can never go stale.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jinja2 import FileSystemLoader, Template, TemplateSyntaxError

from notifications.exceptions import TemplateSyntaxProblem

#: What an editor calls each part, in sentences about it (the keys are the parts' field
#: names and the short names compile_part() is given).
PART_LABELS = {
    "subject": gettext_lazy("subject"),
    "preheader": gettext_lazy("preheader"),
    "html_content": gettext_lazy("HTML"),
    "text_content": gettext_lazy("text"),
    "html": gettext_lazy("HTML"),
    "text": gettext_lazy("text"),
}


def part_label(part: str) -> str:
    """`part` as an editor reads it: "default:NAME" is an optional variable's default."""
    if part.startswith("default:"):
        return _("the default of %(name)s") % {"name": part.removeprefix("default:")}
    return str(PART_LABELS.get(part, part))

from notifications.authoring.rendering import jinja_errors
from notifications.authoring.rendering.sandbox import GuardedSandbox

#: Names every template may use without declaring them (set at render time).
RENDER_GLOBALS = frozenset({"_product_name", "today", "language"})
_CACHE_SIZE = 1024


@lru_cache(maxsize=1)
def environments() -> tuple[GuardedSandbox, GuardedSandbox]:
    """(html, text) environments sharing one layout loader."""
    loader = FileSystemLoader(str(settings.EMAIL_LAYOUTS_DIR))
    html = GuardedSandbox(loader=loader, autoescape=True, keep_trailing_newline=False)
    text = GuardedSandbox(loader=loader, autoescape=False, keep_trailing_newline=False)
    return html, text


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs) -> None:
    if setting in {"EMAIL_TEMPLATES_DIR", "EMAIL_LAYOUTS_DIR"}:
        environments.cache_clear()
        _compiled.clear()


class _CompileCache:
    """A small thread-safe LRU of compiled templates."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple, Template] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Template | None:
        with self._lock:
            template = self._items.get(key)
            if template is not None:
                self._items.move_to_end(key)
            return template

    def put(self, key: tuple, template: Template) -> None:
        with self._lock:
            self._items[key] = template
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_compiled = _CompileCache(_CACHE_SIZE)


def compile_part(source: str, *, part: str, html: bool, cache_key: object | None = None) -> Template:
    """Compile one part (subject, preheader, html, text) of a version.

    `cache_key` is the version's id for saved versions; unsaved previews are not cached.
    """
    key = (cache_key, part, html)
    if cache_key is not None:
        template = _compiled.get(key)
        if template is not None:
            return template
    html_env, text_env = environments()
    try:
        template = (html_env if html else text_env).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateSyntaxProblem(
            _("Syntax error in the %(part)s, line %(line)s: %(error)s")
            % {"part": part_label(part), "line": exc.lineno, "error": jinja_errors.syntax(exc.message or "")}
        ) from None
    if cache_key is not None:
        _compiled.put(key, template)
    return template


def layout(name: str, *, html: bool) -> Template:
    html_env, text_env = environments()
    filename = f"{name}.{'html' if html else 'txt'}"
    return (html_env if html else text_env).get_template(filename)


def layout_exists(name: str) -> bool:
    """Whether the shared layout `name` has both its HTML and its text file, and both compile."""
    try:
        layout(name, html=True)
        layout(name, html=False)
    except Exception:  # noqa: BLE001 - any loader or syntax error means the layout is unusable
        return False
    return True
