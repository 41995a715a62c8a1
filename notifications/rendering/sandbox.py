"""The Jinja2 sandbox staff-edited templates run in.

Jinja's `ImmutableSandboxedEnvironment` already stops templates from reaching Python
internals (`__class__`, `__globals__`, `|attr('__mro__')`) and from mutating lists and
dicts. What it does not stop is a template exhausting memory or CPU: `'a' * 10**9`,
`ns.x ~ ns.x` doubled in a loop, a macro that prints its argument twice nested forty deep,
`range(100000)|map('center', 10000)|join`. `GuardedSandbox` bounds those:

- every value an operator, call, filter, concatenation or `{% set %}` block produces is
  weighed (characters, elements, digits) and refused past `max_size`, before it is built
  when the size can be predicted (`*`, `+`, `**`, padding widths, `replace`, `join`),
  after otherwise (the inputs being bounded, the overshoot is too);
- every `for` loop draws from one iteration budget per render;
- the output stream is counted as it is produced.

The limits live in a `RenderBudget` held in a context variable for the duration of one
render, so compiled templates can be cached and shared between threads.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from jinja2 import StrictUndefined, nodes, pass_eval_context
from jinja2.visitor import NodeTransformer
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from django.utils.translation import gettext as _

from notifications.exceptions import RenderLimitExceeded

#: Widths beyond this (padding, indentation, format specs) are refused outright.
MAX_WIDTH = 10_000
#: Integers beyond this many bits are refused (`10**10**10` would never finish).
MAX_INT_BITS = 4_096
#: Globals Jinja provides that a template has no use for and that have served escapes.
REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "dict")
#: Filters that pad, indent or fill by a count argument.
WIDTH_FILTERS = {"center", "indent", "wordwrap", "truncate", "batch", "slice"}
#: All values one render may produce, added up, as a multiple of `max_size`: quadratic
#: loops (`ns.l = ns.l + [i]`) stay under every size limit while burning minutes of CPU.
WORK_FACTOR = 10
#: `str` methods that pad by a width argument.
WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}
_FORMAT_WIDTH = re.compile(r"(\d+)")
#: A width or precision taken from the arguments: `%*d`, `%.*f`, `{0:{1}}`.
_DYNAMIC_WIDTH = re.compile(r"%[-#0 +]*(\d*\.)?\*|\{[^{}]*:[^{}]*\{")


@dataclass
class RenderBudget:
    """The limits of one render; see the module docstring."""

    max_size: int
    max_iterations: int = 1_000_000
    iterations: int = field(default=0)
    work: int = field(default=0)


_budget: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


@contextlib.contextmanager
def budget(max_size: int) -> Iterator[RenderBudget]:
    """Apply limits to every guarded operation in this context."""
    current = RenderBudget(max_size=max_size)
    token = _budget.set(current)
    try:
        yield current
    finally:
        _budget.reset(token)


def _limit() -> int:
    current = _budget.get()
    if current is None:
        raise RuntimeError("Templates may only be rendered inside rendering.sandbox.budget().")
    return current.max_size


def _too_big(what: str) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        _("The template would produce more than %(limit)s characters (%(what)s); a template may not build values "
          "that large.") % {"limit": f"{_limit():,}", "what": what}
    )


#: Element types whose contents weigh more than one unit (looked up by exact type, in C).
_WEIGHTY = frozenset({str, Markup, list, tuple, set, frozenset, dict})


def _weighty(items: Iterable[object]) -> Iterator[object]:
    """The strings and containers among `items`, selected at C speed."""
    items = list(items)
    return itertools.compress(items, map(_WEIGHTY.__contains__, map(type, items)))


def weigh(value: object, limit: int) -> int:
    """Roughly how much memory `value` holds, in characters; stops counting past `limit`.

    Containers count their elements and what they hold, so a list of 100,000 references
    to one long string weighs what printing or joining it would cost. Numbers inside a
    container count one each (they are capped at MAX_INT_BITS anyway).
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item)
            stack.extend(_weighty(item))
        elif isinstance(item, dict):
            total += 2 * len(item)
            stack.extend(_weighty(item.keys()))
            stack.extend(_weighty(item.values()))
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 1
        if total > limit:
            break
    return total


def check_size(value: object, what: str = "a value") -> object:
    """Refuse a value past `max_size`, and count it against the render's work budget."""
    current = _budget.get()
    limit = _limit()
    weight = weigh(value, limit)
    if weight > limit:
        raise _too_big(what)
    current.work += weight
    if current.work > WORK_FACTOR * limit:
        raise RenderLimitExceeded(
            _("The template builds more than %(limit)s characters of values in all "
              "(a loop that keeps copying a growing value?); that is refused.") % {"limit": f"{WORK_FACTOR * limit:,}"}
        )
    return value


def _check_int_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise RenderLimitExceeded(
            _("The template computes a number larger than %(bits)s bits; that is refused.") % {"bits": MAX_INT_BITS}
        )


def _check_width(value: object, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
        raise RenderLimitExceeded(
            _("%(what)s of %(value)s is larger than the allowed %(limit)s.")
            % {"what": what, "value": f"{value:,}", "limit": f"{MAX_WIDTH:,}"}
        )


def _check_format_string(fmt: str, arguments: Iterable[object] = ()) -> None:
    """Refuse widths past MAX_WIDTH, written in the format string or passed to it."""
    for digits in _FORMAT_WIDTH.findall(fmt):
        if len(digits) > 6 or int(digits) > MAX_WIDTH:
            raise RenderLimitExceeded(
                _("A format width or precision in the template is larger than %(limit)s.") % {"limit": f"{MAX_WIDTH:,}"}
            )
    if _DYNAMIC_WIDTH.search(fmt):
        for value in arguments:
            values = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                _check_width(item, _("A width given to a format string"))


def bounded_join(separator: str, items: Iterable[object], *, markup: bool = False) -> str:
    """`separator.join(items)` that stops as soon as the result would pass the limit."""
    limit = _limit()
    parts: list[str] = []
    size = 0
    for index, item in enumerate(items):
        text = Markup.escape(item) if markup else str(item)
        size += len(text) + (len(separator) if index else 0)
        if size > limit:
            raise _too_big(_("joining values"))
        parts.append(text)
    return (Markup(separator) if markup else separator).join(parts)


def _predict_binop(operator: str, left: object, right: object) -> None:
    limit = _limit()
    sequences = (str, list, tuple)
    if operator == "*":
        if isinstance(left, int) and isinstance(right, sequences):
            left, right = right, left
        if isinstance(left, sequences) and isinstance(right, int):
            if right > 0 and weigh(left, limit) * right > limit:
                raise _too_big(_("repeating a value"))
        elif isinstance(left, int) and isinstance(right, int):
            _check_int_bits(left.bit_length() + right.bit_length())
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _check_int_bits(right * math.log2(abs(left)))
    elif operator == "+":
        if isinstance(left, sequences) and isinstance(right, sequences):
            if weigh(left, limit) + weigh(right, limit) > limit:
                raise _too_big(_("adding values"))
    elif operator == "%" and isinstance(left, str):
        _check_format_string(left, [right])


def _precheck_method(method: object, args: tuple, kwargs: dict) -> None:
    """Refuse `str` method calls whose result size is known to be too large."""
    name = getattr(method, "__name__", "")
    owner = getattr(getattr(method, "__wrapped__", method), "__self__", None)
    if not isinstance(owner, str):
        return
    limit = _limit()
    if name in WIDTH_METHODS:
        for value in (*args, *kwargs.values()):
            _check_width(value, _("A width passed to %(name)s()") % {"name": name})
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        _check_width(size, _("A tab size"))
    elif name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        old, new = args[0], args[1]
        count = owner.count(old) if old else len(owner) + 1
        if len(owner) + count * max(0, len(new) - len(old)) > limit:
            raise _too_big(_("replacing text"))
    elif name in ("format", "format_map"):
        _check_format_string(owner, [*args, *kwargs.values()])


def _guard_filter(name: str, func):
    """Wrap a filter so its arguments and result are bounded like everything else."""

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        if name in WIDTH_FILTERS:
            for value in (*args, *kwargs.values()):
                _check_width(value, _("A width passed to |%(name)s") % {"name": name})
            if name == "indent":
                text = next((a for a in args if isinstance(a, str)), "")
                width = next((a for a in args[1:] if isinstance(a, int)), kwargs.get("width", 4))
                if isinstance(width, int) and len(text) + (text.count("\n") + 1) * width > _limit():
                    raise _too_big(_("indenting text"))
        elif name == "format":
            text = next((a for a in args if isinstance(a, str)), "")
            rest = list(args[args.index(text) + 1:]) if text in args else []
            _check_format_string(str(text), [*rest, *kwargs.values()])
        elif name == "replace":
            strings = [a for a in args if isinstance(a, str)]
            if len(strings) >= 3:
                text, old, new = strings[:3]
                count = text.count(old) if old else len(text) + 1
                if len(text) + count * max(0, len(new) - len(old)) > _limit():
                    raise _too_big(_("replacing text"))
        result = func(*args, **kwargs)
        return check_size(result, f"the |{name} filter")

    return guarded


@pass_eval_context
def _join_filter(eval_ctx, value, d: str = "", attribute=None):
    """Jinja's `join`, bounded. Attribute lookups go through the sandbox."""
    items = value
    if attribute is not None:
        items = (eval_ctx.environment.getitem(item, attribute) for item in value)
    return bounded_join(str(d), items, markup=eval_ctx.autoescape)


class _GuardInserter(NodeTransformer):
    """Route loops, concatenations and `{% set %}` blocks through the environment's guards."""

    def _guard_call(self, name: str, node: nodes.Expr) -> nodes.Call:
        return nodes.Call(
            nodes.EnvironmentAttribute(name, lineno=node.lineno),
            [node], [], None, None, lineno=node.lineno,
        )

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._guard_call("guard_iter", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._guard_call("guard_size", node)

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        node.filter = nodes.Filter(node.filter, "_guard_size", [], [], None, None, lineno=node.lineno)
        return node


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with size, iteration and integer bounds (module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options) -> None:
        options.setdefault("undefined", StrictUndefined)
        super().__init__(**options)
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        filters["join"] = _join_filter
        filters["_guard_size"] = lambda value: check_size(value, "a {% set %} block")
        self.filters = filters

    # Compilation: insert the guards into every template's syntax tree.
    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        return _GuardInserter().visit(tree)

    # Runtime guards.
    def guard_iter(self, iterable: Iterable[object]) -> Iterator[object]:
        current = _budget.get()
        for item in iterable:
            current.iterations += 1
            if current.iterations > current.max_iterations:
                raise RenderLimitExceeded(
                    f"The template loops more than {current.max_iterations:,} times in all; "
                    "that is refused."
                )
            yield item

    def guard_size(self, value: object) -> object:
        return check_size(value, "joining text with ~")

    def call_binop(self, context, operator, left, right):
        _predict_binop(operator, left, right)
        return check_size(super().call_binop(context, operator, left, right), f"the {operator} operator")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        _precheck_method(__obj, args, kwargs)
        if getattr(__obj, "__name__", "") == "join" and isinstance(getattr(__obj, "__self__", None), str):
            return bounded_join(__obj.__self__, args[0] if args else ())
        result = super().call(__context, __obj, *args, **kwargs)
        return check_size(result, "a call")


def render_stream(template, context: dict, *, what: str) -> str:
    """Render `template`, counting the output as it is produced and stopping at the limit."""
    limit = _limit()
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > limit:
            raise RenderLimitExceeded(
                f"The {what} would be longer than {limit:,} characters; that is refused."
            )
        parts.append(chunk)
    return "".join(parts)
