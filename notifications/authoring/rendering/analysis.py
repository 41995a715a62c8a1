"""What a template version uses, checked before it is saved.

Every variable a version uses must be declared by its template (required, or optional
with a default) and every declared variable must be used: a typo in either place would
otherwise surface only when a message fails to render, or silently drop a value.
"""
from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext as _
from jinja2 import TemplateNotFound, TemplateSyntaxError, meta, nodes, sandbox

from notifications.exceptions import TemplateDeclarationError, TemplateSecurityError, TemplateSyntaxProblem

from notifications.authoring.rendering import jinja_errors
from notifications.authoring.rendering.environment import RENDER_GLOBALS, environments, part_label

PARTS = ("subject", "preheader", "html_content", "text_content")
# Attributes the sandbox refuses at render time, refused at save time too when written out.
UNSAFE_ATTRIBUTES = frozenset({"mro"}).union(
    sandbox.UNSAFE_FUNCTION_ATTRIBUTES, sandbox.UNSAFE_METHOD_ATTRIBUTES, sandbox.UNSAFE_GENERATOR_ATTRIBUTES,
    sandbox.UNSAFE_COROUTINE_ATTRIBUTES, sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
)


def used_variables(sources: Mapping[str, str]) -> set[str]:
    """Names the given parts read from their context, without globals.

    Raises `TemplateSyntaxProblem` naming the part and line of the first syntax error.
    """
    html_env, text_env = environments()
    used: set[str] = set()
    for part, source in sources.items():
        if not source:
            continue
        env = html_env if part == "html_content" else text_env
        try:
            used |= _used_in_part(env, part, source)
        except RecursionError:
            # Parsing and analysing recurse once per level of nesting: `((((…))))` or
            # `{% if %}` nested a few hundred deep exhaust Python's stack, not our budget.
            raise TemplateSyntaxProblem(
                _("The %(part)s nests expressions or blocks too deeply to be read (a few hundred levels); "
                  "nest less.") % {"part": part_label(part)},
                field=part,
            ) from None
    return used - set(html_env.globals) - RENDER_GLOBALS


def _used_in_part(env, part: str, source: str) -> set[str]:
    """The names one part reads, after refusing its syntax errors, unknown imports and internals."""
    label = part_label(part)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        problem = TemplateSyntaxProblem(
            _("Syntax error in the %(part)s, line %(line)s: %(error)s")
            % {"part": label, "line": exc.lineno, "error": jinja_errors.syntax(exc.message or "")},
            field=part,
        )
        problem.line = exc.lineno
        raise problem from None
    for name in meta.find_referenced_templates(tree):
        if name is None:
            continue
        try:
            env.get_template(name)
        except TemplateNotFound:
            raise TemplateDeclarationError(
                _("The %(part)s imports %(name)s, which is not a shared layout file.")
                % {"part": label, "name": repr(name)},
                field=part,
            ) from None
    refuse_unsafe_attributes(tree, part)
    return meta.find_undeclared_variables(tree)


def refuse_unsafe_attributes(tree: nodes.Template, part: str) -> None:
    """Refuse `x.__class__`, `x['__globals__']`, `x|attr('mro')` and the like, as written.

    The sandbox refuses them when rendering anyway; refusing them at save keeps such a
    version from becoming active and failing every send. Names built at render time
    (`'__cl' ~ 'ass__'`) are left to the trial render with the sample variables.
    """
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, nodes.Const) else None
        else:
            first = node.args[0] if node.name == "attr" and node.args else None
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and (name.startswith("_") or name in UNSAFE_ATTRIBUTES):
            problem = TemplateSecurityError(
                _(
                    "The %(part)s, line %(line)s, reaches %(name)s: templates may only read the variables' own "
                    "values, never attributes starting with '_' or internals."
                ) % {"part": part_label(part), "line": node.lineno, "name": repr(name)},
                field=part,
            )
            problem.line = node.lineno
            raise problem


def check_declarations(
    sources: Mapping[str, str], *, required: list[str], optional: Mapping[str, object]
) -> None:
    """Refuse a version whose used and declared variables differ, naming every difference."""
    used = used_variables(sources)
    declared = set(required) | set(optional)
    problems = []
    undeclared = sorted(used - declared)
    unused = sorted(declared - used)
    if undeclared:
        problems.append(_("uses undeclared variables: %(names)s") % {"names": ", ".join(undeclared)})
    if unused:
        problems.append(_("does not use declared variables: %(names)s") % {"names": ", ".join(unused)})
    if problems:
        raise TemplateDeclarationError(_("The version %(problems)s.") % {"problems": _("; and ").join(problems)})
