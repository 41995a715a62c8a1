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
- the output stream is counted as it is produced;
- the work itself is counted in operations against one budget per render
  (`max_operations`, from `TEMPLATE_RENDER_MAX_OPERATIONS`): a macro that calls itself twice
  per level, or loops inside loops, produce nothing and build nothing, so no size limit
  sees them, yet `f(23)` kept a server busy for a minute. Counting operations rather than
  seconds makes the refusal the same on an idle machine and a busy one. See `charge()`.

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

from jinja2 import StrictUndefined, nodes, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from django.utils.translation import gettext as _

from notifications.exceptions import RenderLimitExceeded
from notifications.formatting import number

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
#: Filters that walk text character by character in Python (`'…'|max` on a million
#: characters takes 0.2 s): they pay per character, other filters per 64.
TEXT_WALKING_FILTERS = frozenset({
    "unique", "sort", "max", "min", "sum", "batch", "slice", "groupby", "dictsort", "wordwrap", "map",
    "select", "reject", "selectattr", "rejectattr", "join",
})
#: Filters that take the same time whatever the size of their input: `items|length` in a
#: loop over `items` is a common sight and must not cost the square of its length.
CONSTANT_TIME_FILTERS = frozenset({"length", "count", "first", "last", "random", "default", "d", "attr"})
#: Tests that compare their operands, walking them when they are lists or text.
COMPARING_TESTS = frozenset({
    "in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">",
    "ge", ">=",
})
#: Filters that call a Python key function per element (sorting, grouping, comparing):
#: they pay this many operations per element instead of one.
ELEMENT_COST = {"sort": 4, "dictsort": 4, "groupby": 4, "unique": 3, "max": 3, "min": 3, "wordwrap": 3}
#: `str` methods that pad by a width argument.
WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}
_FORMAT_WIDTH = re.compile(r"(\d+)")
#: A width or precision taken from the arguments: `%*d`, `%.*f`, `{0:{1}}`.
_DYNAMIC_WIDTH = re.compile(r"%[-#0 +]*(\d*\.)?\*|\{[^{}]*:[^{}]*\{")


#: The setting the operations budget comes from, named in every refusal.
OPERATIONS_SETTING = "TEMPLATE_RENDER_MAX_OPERATIONS"
#: Used when a render does not say (tests of the sandbox alone); see docs/CONTRACT.md.
DEFAULT_MAX_OPERATIONS = 1_000_000
#: What one call (function, method, macro, `caller()`, `loop()`) costs: a sandboxed call
#: (safety checks, argument binding, weighing the result) takes as long as evaluating tens
#: of template nodes, so counting it as one would let a call-heavy loop run ten times longer
#: per operation than anything else.
CALL_OPERATIONS = 10
#: Output is charged one operation per this many characters (and one per chunk).
OUTPUT_CHARACTERS_PER_OPERATION = 64
#: Calls nested deeper than this are refused: each level takes about seven Python frames,
#: so this stays well below Python's recursion limit (1,000) wherever the render runs (a
#: request, a worker, a test), and a refusal never depends on how deep the caller was.
MAX_CALL_DEPTH = 64
#: Containers whose length a filter or test pays for (they walk every element).
_SIZED = (list, tuple, dict, set, frozenset, range)
#: Values whose elements are copied when built (a range is not: it is lazy).
_CONTAINERS = (list, tuple, dict, set, frozenset)


@dataclass(slots=True)
class RenderBudget:
    """The limits of one render; see the module docstring."""

    max_size: int
    max_operations: int = DEFAULT_MAX_OPERATIONS
    max_iterations: int = 1_000_000
    iterations: int = field(default=0)
    work: int = field(default=0)
    operations: int = field(default=0)
    depth: int = field(default=0)


_budget: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


@contextlib.contextmanager
def budget(max_size: int, *, max_operations: int = DEFAULT_MAX_OPERATIONS) -> Iterator[RenderBudget]:
    """Apply limits to every guarded operation in this context."""
    current = RenderBudget(max_size=max_size, max_operations=max_operations)
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


def charge(operations: int) -> None:
    """Count `operations` against the render's budget; refuse past `max_operations`.

    One counter for the whole render (subject, preheader, HTML, text, layout). Charged:
    each body entered (template, loop iteration, macro or `{% call %}` invocation) by its
    static weight (`tick`), each item a loop draws (`guard_iter`), each call (`call`), each
    filter and test and what they walk (`_guard_filter`, `_guard_test`), each comparison
    operand and slice (`guard_operand`), each value built (`check_size`, `weigh`) and the
    output (`render_stream`). The full list, and why the default is what it is, is in
    docs/CONTRACT.md, "Render operations budget".
    """
    current = _budget.get()
    try:
        current.operations += operations
    except AttributeError:
        raise RuntimeError("Templates may only be rendered inside rendering.sandbox.budget().") from None
    if current.operations > current.max_operations:
        raise RenderLimitExceeded(
            _("The template needs more than %(limit)s operations to render (%(setting)s: calls, macro "
              "invocations, loop iterations, filters and output all count, empty output included); a macro "
              "that calls itself or loops inside loops would keep the server busy. That is refused.")
            % {"limit": number(current.max_operations), "setting": OPERATIONS_SETTING}
        )


@pass_context
def tick(context, weight: int) -> str:
    """Charge a body's static weight on entry; compiled into every body (see _GuardInserter).

    Taking the context keeps Jinja's optimizer from folding the call away at compile time.
    The body of `charge()` is repeated here: this runs once per loop iteration and macro call.
    A template can reach it by name only through `map('guard-tick')`, so any weight but a
    positive integer counts as one.
    """
    if weight.__class__ is not int or weight < 1:
        weight = 1
    current = _budget.get()
    try:
        current.operations += weight
    except AttributeError:
        raise RuntimeError("Templates may only be rendered inside rendering.sandbox.budget().") from None
    if current.operations > current.max_operations:
        charge(0)  # raises, with the message
    return ""


def _sized_arguments(args: tuple, kwargs: dict, *, walks_text: bool = False) -> int:
    """The elements a filter or test would walk: the lengths of its container arguments, and
    of its text, per character when it walks text in Python (`walks_text`), else per
    OUTPUT_CHARACTERS_PER_OPERATION characters (C code: `upper`, `replace`, `in`)."""
    total = 0
    for value in (*args, *kwargs.values()) if kwargs else args:
        if isinstance(value, str):
            total += len(value) if walks_text else len(value) // OUTPUT_CHARACTERS_PER_OPERATION
        elif isinstance(value, _SIZED):
            total += len(value)
    return total


def _counted(items: Iterator[object]) -> Iterator[object]:
    """A lazy filter's result (`map`, `select`, `unique`, `batch`…), charging each item it
    yields as a call (a sandboxed attribute lookup, filter or test per item): chained lazy
    filters each walk every item, so each pays for it."""
    for item in items:
        charge(CALL_OPERATIONS)
        yield item


def _too_big(what: str) -> RenderLimitExceeded:
    return RenderLimitExceeded(
        _("The template would produce more than %(limit)s characters (%(what)s); a template may not build values "
          "that large.") % {"limit": number(_limit()), "what": what}
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
    walked = 0
    stack = [value]
    while stack:
        item = stack.pop()
        walked += 1
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
    if walked > 1:
        charge(walked - 1)  # the strings and containers nested in `value`, each looked at
    return total


def check_size(value: object, what: str = "") -> object:
    """Refuse a value past `max_size`, and count it against the render's work budget."""
    current = _budget.get()
    limit = _limit()
    weight = weigh(value, limit)
    if weight > limit:
        raise _too_big(what or _("a value"))
    current.work += weight
    # Building a value costs its characters (cheap, in C) and its elements (each copied and
    # weighed): `ns.l = ns.l + [i]` 100,000 times copies five billion references.
    copied = len(value) if isinstance(value, _CONTAINERS) else 0
    current.operations += 1 + weight // OUTPUT_CHARACTERS_PER_OPERATION + copied
    if current.operations > current.max_operations:
        charge(0)  # raises, with the message
    if current.work > WORK_FACTOR * limit:
        raise RenderLimitExceeded(
            _("The template builds more than %(limit)s characters of values in all "
              "(a loop that keeps copying a growing value?); that is refused.") % {"limit": number(WORK_FACTOR * limit)}
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
            % {"what": what, "value": number(value), "limit": number(MAX_WIDTH)}
        )


def _check_format_string(fmt: str, arguments: Iterable[object] = ()) -> None:
    """Refuse widths past MAX_WIDTH, written in the format string or passed to it."""
    for digits in _FORMAT_WIDTH.findall(fmt):
        if len(digits) > 6 or int(digits) > MAX_WIDTH:
            raise RenderLimitExceeded(
                _("A format width or precision in the template is larger than %(limit)s.") % {"limit": number(MAX_WIDTH)}
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
        if (isinstance(left, sequences) and isinstance(right, sequences)
                and weigh(left, limit) + weigh(right, limit) > limit):
            raise _too_big(_("adding values"))
    elif operator == "%" and isinstance(left, str):
        _check_format_string(left, [right])


def _precheck_method(method: object, args: tuple, kwargs: dict) -> None:
    """Refuse `str` method calls whose result size is known to be too large, and charge
    those that scan their receiver (`text.count('a')`, `items.index(x)`) for its size."""
    name = getattr(method, "__name__", "")
    owner = getattr(getattr(method, "__wrapped__", method), "__self__", None)
    if not isinstance(owner, str):
        if name in ("index", "count") and isinstance(owner, (list, tuple)):
            charge(len(owner))
        return
    if len(owner) >= OUTPUT_CHARACTERS_PER_OPERATION:
        charge(len(owner) // OUTPUT_CHARACTERS_PER_OPERATION)
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

    walks_text = name in TEXT_WALKING_FILTERS
    per_element = 0 if name in CONSTANT_TIME_FILTERS else ELEMENT_COST.get(name, 1)

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        charge(1 + per_element * _sized_arguments(args, kwargs, walks_text=walks_text) if per_element else 1)
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
        if isinstance(result, Iterator):
            return _counted(result)
        return check_size(result, _("the |%(name)s filter") % {"name": name})

    return guarded


def _guard_test(name: str, func):
    """Wrap a test so each application counts against the operations budget; the tests that
    compare (`in`, `eq`, `lt`…) also pay for the size of what they compare."""
    compares = name in COMPARING_TESTS

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        charge(1 + _sized_arguments(args, kwargs) if compares else 1)
        return func(*args, **kwargs)

    return guarded


def guard_operand(value: object) -> object:
    """An operand of a comparison (`x in items`, `a == b`) or a slice (`items[1:]`), charged
    for its size: comparing or copying walks a list or a text, at C speed but every time."""
    if isinstance(value, str):
        if len(value) >= OUTPUT_CHARACTERS_PER_OPERATION:
            charge(len(value) // OUTPUT_CHARACTERS_PER_OPERATION)
    elif isinstance(value, _CONTAINERS):
        charge(len(value))
    return value


@pass_eval_context
def _join_filter(eval_ctx, value, d: str = "", attribute=None):
    """Jinja's `join`, bounded. Attribute lookups go through the sandbox."""
    charge(1 + _sized_arguments((value,), {}, walks_text=True))
    items = value
    if attribute is not None:
        items = (eval_ctx.environment.getitem(item, attribute) for item in value)
    return bounded_join(str(d), items, markup=eval_ctx.autoescape)


#: Statements whose `body` runs on its own (per iteration, per invocation) and so charges
#: itself on entry, not as part of the body around it.
_SCOPES = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.Block)
#: The internal filter a body's charge is compiled to: a name no template can write.
TICK_FILTER = "guard-tick"
#: The internal filter a comparison's operands go through (guard_operand).
OPERAND_FILTER = "guard-operand"


#: Nodes that cost nothing when run: text and literals are compiled into the code as they are.
_FREE = (nodes.TemplateData, nodes.Const)


def static_weight(body: Iterable[nodes.Node]) -> int:
    """The syntax nodes of `body` that do work when run, outside the bodies nested in it
    (`_SCOPES`): an upper bound on what one pass through the body evaluates."""
    count = 0
    stack = list(body)
    while stack:
        node = stack.pop()
        if not isinstance(node, _FREE):
            count += 1
        if isinstance(node, nodes.Block):
            continue
        exclude = ("body",) if isinstance(node, _SCOPES) else ()
        stack.extend(node.iter_child_nodes(exclude=exclude))
    return count


class _GuardInserter(NodeTransformer):
    """Route loops, concatenations and `{% set %}` blocks through the environment's guards,
    and make every body charge its weight to the operations budget when it runs."""

    def _guard_call(self, name: str, node: nodes.Expr, *extra: nodes.Expr) -> nodes.Call:
        return nodes.Call(
            nodes.EnvironmentAttribute(name, lineno=node.lineno),
            [node, *extra], [], None, None, lineno=node.lineno,
        )

    def _charge_on_entry(self, node: nodes.Node) -> None:
        weight = max(1, static_weight(node.body))
        tick_node = nodes.Filter(nodes.Const(weight), TICK_FILTER, [], [], None, None, lineno=node.lineno)
        node.body.insert(0, nodes.ExprStmt(tick_node, lineno=node.lineno))

    def visit_Template(self, node: nodes.Template) -> nodes.Node:
        self.generic_visit(node)
        self._charge_on_entry(node)
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        per_item = 1 + (static_weight([node.test]) if node.test is not None else 0)
        node.iter = self._guard_call("guard_iter", node.iter, nodes.Const(per_item, lineno=node.lineno))
        self._charge_on_entry(node)
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)
        self._charge_on_entry(node)
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)
        self._charge_on_entry(node)
        return node

    def visit_Block(self, node: nodes.Block) -> nodes.Node:
        self.generic_visit(node)
        self._charge_on_entry(node)
        return node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = self._charge_operand(node.expr)
        for operand in node.ops:
            operand.expr = self._charge_operand(operand.expr)
        return node

    def _charge_operand(self, expr: nodes.Expr) -> nodes.Expr:
        if isinstance(expr, nodes.Const):
            return expr
        return nodes.Filter(expr, OPERAND_FILTER, [], [], None, None, lineno=expr.lineno)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        # Jinja compiles `items[a:b]` to a plain Python slice, past the sandbox's getitem:
        # the copy it makes is charged here.
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):
            return nodes.Filter(node, OPERAND_FILTER, [], [], None, None, lineno=node.lineno)
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
        filters["_guard_size"] = lambda value: check_size(value, _("a {% set %} block"))
        filters[TICK_FILTER] = tick
        filters[OPERAND_FILTER] = guard_operand
        self.filters = filters
        self.tests = {name: _guard_test(name, func) for name, func in self.tests.items()}

    # Compilation: insert the guards into every template's syntax tree.
    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        return _GuardInserter().visit(tree)

    # Runtime guards.
    def guard_iter(self, iterable: Iterable[object], per_item: int = 1) -> Iterator[object]:
        current = _budget.get()
        per_item = per_item if isinstance(per_item, int) and per_item > 0 else 1
        for item in iterable:
            charge(per_item)
            current.iterations += 1
            if current.iterations > current.max_iterations:
                raise RenderLimitExceeded(
                    _("The template loops more than %(limit)s times in all; that is refused.")
                    % {"limit": number(current.max_iterations)}
                )
            yield item

    def guard_size(self, value: object) -> object:
        return check_size(value, _("joining text with ~"))

    def call_binop(self, context, operator, left, right):
        _predict_binop(operator, left, right)
        return check_size(super().call_binop(context, operator, left, right),
                          _("the %(operator)s operator") % {"operator": operator})

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        """Every call a template makes (functions, methods, macros, `caller()`, `loop()`)."""
        charge(CALL_OPERATIONS)
        _precheck_method(__obj, args, kwargs)
        if getattr(__obj, "__name__", "") == "join" and isinstance(getattr(__obj, "__self__", None), str):
            charge(_sized_arguments(args[:1], {}, walks_text=True))
            return bounded_join(__obj.__self__, args[0] if args else ())
        current = _budget.get()
        current.depth += 1
        try:
            if current.depth > MAX_CALL_DEPTH:
                raise RenderLimitExceeded(
                    _("The template nests calls more than %(depth)s deep (a macro that keeps calling "
                      "itself?); the render operations budget (%(setting)s) allows no deeper. That is refused.")
                    % {"depth": MAX_CALL_DEPTH, "setting": OPERATIONS_SETTING}
                )
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            current.depth -= 1
        return check_size(result, _("a call"))


def render_stream(template, context: dict, *, what: str) -> str:
    """Render `template`, counting the output as it is produced and stopping at the limit."""
    limit = _limit()
    current = _budget.get()
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        current.operations += 1 + len(chunk) // OUTPUT_CHARACTERS_PER_OPERATION
        if current.operations > current.max_operations:
            charge(0)  # raises, with the message
        if size > limit:
            raise RenderLimitExceeded(
                _("The %(what)s would be longer than %(limit)s characters; that is refused.")
                % {"what": what, "limit": number(limit)}
            )
        parts.append(chunk)
    return "".join(parts)
