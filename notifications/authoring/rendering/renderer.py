"""Render a template version with variables into a subject, an HTML part and a text part.

Pure: no database writes, no sending. The sending service calls it once per message
batch at enqueue time; the admin preview and the API's test render call it too.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import css_inline
import html2text
from django.conf import settings
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from jinja2 import TemplateNotFound, UndefinedError
from jinja2.exceptions import SecurityError, TemplateError as JinjaTemplateError
from markupsafe import Markup

from notifications.exceptions import (
    HeaderInjection,
    MissingVariables,
    NotificationError,
    RenderLimitExceeded,
    TemplateError,
    TemplateSecurityError,
)
from notifications.channels.email.headers import subject_problem

from notifications.authoring.rendering import jinja_errors, sandbox
from notifications.authoring.rendering.environment import compile_part, layout, part_label

@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    preheader: str


@dataclass(frozen=True)
class VersionSource:
    """The parts of a version to render; saved versions pass their id as `cache_key`."""

    subject: str
    html_content: str
    text_content: str = ""
    preheader: str = ""
    language: str = ""
    cache_key: object | None = None

    @classmethod
    def of(cls, version) -> VersionSource:
        return cls(
            subject=version.subject,
            html_content=version.html_content,
            text_content=version.text_content,
            preheader=version.preheader,
            language=version.language,
            cache_key=version.pk,
        )


def render_globals(language: str) -> dict[str, object]:
    with translation.override(language or settings.LANGUAGE_CODE):
        today = date_format(timezone.localdate(), "SHORT_DATE_FORMAT")
    return {"_product_name": settings.NOTIFICATIONS_PRODUCT_NAME, "today": today, "language": language}


def build_context(
    *,
    required: list[str],
    optional: Mapping[str, object],
    variables: Mapping[str, object],
    globals_: Mapping[str, object],
) -> dict[str, object]:
    """Check required variables (naming every missing one) and fill optional defaults.

    A default may be a template of its own using only the globals (`{{ today }}`).
    """
    missing = [name for name in required if name not in variables or variables[name] is None]
    if missing:
        raise MissingVariables(missing)
    context: dict[str, object] = dict(globals_)
    for name, default in optional.items():
        value = variables.get(name)
        if value is None or value == "":
            value = default
            if isinstance(default, str) and ("{{" in default or "{%" in default):
                part = f"default:{name}"
                value = _render(compile_part(default, part=part, html=False), dict(globals_), part_label(part))
        context[name] = value
    for name, value in variables.items():
        context.setdefault(name, value)
    return context


def render(
    source: VersionSource,
    *,
    variables: Mapping[str, object],
    required: list[str],
    optional: Mapping[str, object],
    layout_name: str = "default",
) -> RenderedEmail:
    """Render all parts, bounded by `TEMPLATE_RENDER_MAX_BYTES` and, all parts and the layout
    together, by `TEMPLATE_RENDER_MAX_OPERATIONS` (sandbox.charge says what counts).

    Raises `MissingVariables`, `HeaderInjection`, `TemplateSecurityError`,
    `RenderLimitExceeded` or `TemplateError`; never a Jinja or Python error.
    """
    try:
        with sandbox.budget(settings.TEMPLATE_RENDER_MAX_BYTES, max_operations=settings.TEMPLATE_RENDER_MAX_OPERATIONS):
            return _render_all(source, variables, required, optional, layout_name)
    except NotificationError:
        raise
    except SecurityError as exc:
        raise TemplateSecurityError(
            _at_line(exc, _("The template tried to use something templates may not: %(error)s")
                     % {"error": jinja_errors.security(str(exc))})
        ) from None
    except UndefinedError as exc:
        raise TemplateError(
            _at_line(exc, jinja_errors.undefined(str(exc))), field="template", code="undefined_name",
        ) from None
    except TemplateNotFound as exc:
        raise TemplateError(
            _("Layout or include not found: %(name)s") % {"name": exc.name}, field="template", code="unknown_layout"
        ) from None
    except RecursionError:
        # MAX_CALL_DEPTH stops a template's own recursion first; this is what Python itself
        # refused (a deeply nested expression, an include cycle).
        raise RenderLimitExceeded(
            _("The template nests too deeply to render (a macro or include that keeps calling itself?); "
              "the render operations budget (%(setting)s) allows no deeper.") % {"setting": sandbox.OPERATIONS_SETTING}
        ) from None
    except (OverflowError, MemoryError) as exc:
        raise RenderLimitExceeded(
            _at_line(exc, _("The template computes a value too large to hold (%(error)s).")
                     % {"error": type(exc).__name__})
        ) from None
    except JinjaTemplateError as exc:
        raise TemplateError(
            _at_line(exc, _("The template failed to render.")), field="template", code="render_failed",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any error inside a sandboxed render is the template's
        # Python's own text (`division by zero`) is English: the exception's name says what
        # happened in a language-neutral way, the sentence around it is ours.
        raise TemplateError(
            _at_line(exc, _("The template failed to render: an operation on its values is not possible "
                            "(%(error)s).") % {"error": type(exc).__name__}),
            field="template", code="render_failed",
        ) from None


def _at_line(exc: BaseException, message: str) -> str:
    """`message`, prefixed with the template line the error was raised on when it is known."""
    line = jinja_errors.template_line(exc.__traceback__)
    if line is None:
        return message
    return _("Line %(line)s: %(error)s") % {"line": line, "error": message}


def _render(template, context: dict, what: str) -> str:
    return sandbox.render_stream(template, context, what=what)


def _render_all(source, variables, required, optional, layout_name) -> RenderedEmail:
    globals_ = render_globals(source.language)
    context = build_context(required=required, optional=optional, variables=variables, globals_=globals_)
    key = source.cache_key

    subject = _render(compile_part(source.subject, part="subject", html=False, cache_key=key), context, part_label("subject")).strip()
    problem = subject_problem(subject)
    if problem:
        raise HeaderInjection(
            _(
                "The subject would contain a line break or a control character: %(problem)s "
                "(from a variable or the template); subjects must be one line of text."
            ) % {"problem": problem}
        )
    preheader = ""
    if source.preheader:
        preheader = _render(
            compile_part(source.preheader, part="preheader", html=False, cache_key=key), context, part_label("preheader")
        ).strip()
    body_html = _render(compile_part(source.html_content, part="html", html=True, cache_key=key), context, part_label("html"))
    if source.text_content.strip():
        body_text = _render(compile_part(source.text_content, part="text", html=False, cache_key=key), context, part_label("text"))
    else:
        body_text = html_to_text(body_html)

    if layout_name:
        frame = {**globals_, "subject": subject, "preheader": preheader}
        html = _render(layout(layout_name, html=True), {**frame, "content": Markup(body_html)}, _("HTML layout"))
        text = _render(layout(layout_name, html=False), {**frame, "content": body_text}, _("text layout"))
    else:
        html, text = body_html, body_text
    html = css_inline.inline(html) if "<style" in html else html
    sandbox.check_size(html, "the final HTML")
    return RenderedEmail(subject=subject, html=html, text=text.strip() + "\n", preheader=preheader)


def html_to_text(html: str) -> str:
    """A readable plain-text part for versions that have none: links kept, no wrapping."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = False
    converter.protect_links = True
    converter.wrap_links = False
    return converter.handle(html).strip()
