"""Hostile templates: each must be refused fast, with a small peak, by a named limit.

    .venv/bin/python bench/sandbox_bombs.py

Prints, per bomb, the refusal, the limit that stopped it (the operations budget
TEMPLATE_RENDER_MAX_OPERATIONS, the call depth, sizes), the operations counted by then, the CPU
time and the peak memory. Figures are printed, not asserted: they depend on the machine;
the refusals themselves are asserted in notifications/tests/test_render_budget.py.
"""
from __future__ import annotations

import contextlib
import time
import tracemalloc

from _setup import setup

setup()

from django.conf import settings  # noqa: E402

from notifications.exceptions import NotificationError  # noqa: E402
from notifications.authoring.rendering import VersionSource, render, sandbox  # noqa: E402

DOUBLING = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
BOMBS = {
    "'a' * 10**9": "{{ 'a' * 10**9 }}",
    "range(10**8)|list": "{{ range(10**8)|list }}",
    "concat doubling": "{% set ns = namespace(x='a') %}{% for i in range(80) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
    "map center join": "{{ range(100000)|map('center', 10000)|join }}",
    "macro nesting": "{% macro m(x) %}{{ x }}{{ x }}{% endmacro %}{{ " + "m(" * 40 + "'ab'" + ")" * 40 + " }}",
    "nested loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "output loop": "{% for a in range(100000) %}{{ 'x' * 10000 }}{% endfor %}",
    "width via %*": "{{ '%*d' % (10**9, 1) }}",
    "width via {0:{1}}": "{{ '{0:{1}}'.format('a', 10**9) }}",
    "batch fill": "{{ [1]|batch(10**9, 'x')|list }}",
    "quadratic list": "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}",
    "mro escape": "{{ ''.__class__.__mro__ }}",
    # Issue 8: work that produces nothing and builds nothing.
    "doubling macro f(20)": DOUBLING + "{{ f(20) }}",
    "doubling macro f(23)": DOUBLING + "{{ f(23) }}",
    "doubling macro f(30)": DOUBLING + "{{ f(30) }}",
    "doubling, char per leaf": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% else %}x{% endif %}"
                               "{% endmacro %}{{ f(23) }}",
    "deep recursion r(10**6)": "{% macro r(n) %}{% if n %}{{ r(n-1) }}{% endif %}{% endmacro %}{{ r(1000000) }}",
    "call-block recursion": "{% macro r(n) %}{% if n %}{% call r(n-1) %}{% endcall %}{% endif %}{{ caller() }}{% endmacro %}"
                            "{% call r(100000) %}{% endcall %}",
    "loops 1000x1000": "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "loops 1000^3": "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
                    "{% endfor %}{% endfor %}{% endfor %}",
    "loop filtered out": "{% for a in range(100000) %}{% for b in range(100000) if b < 0 %}{% endfor %}{% endfor %}",
    "macro of 2,000 ifs x 10^4": "{% macro m() %}" + "{% if false %}{% endif %}" * 2000 + "{% endmacro %}"
                                 "{% for a in range(10000) %}{{ m() }}{% endfor %}",
    "sort 10^5 in a loop": "{% for a in range(1000) %}{% set x = range(100000)|list|sort %}{% endfor %}",
    "max of 10^6 chars x 1000": "{% set s = 'abcdefghij' * 100000 %}{% for a in range(1000) %}"
                                "{% set x = s|max %}{% endfor %}",
    "in a list of 10^5, x10^5": "{% set l = range(100000)|list %}{% for i in range(100000) %}"
                                "{% if -1 in l %}{% endif %}{% endfor %}",
    "slice a list of 10^5": "{% set l = range(100000)|list %}{% for i in range(100000) %}{% set x = l[::-1] %}"
                            "{% endfor %}",
    "count in 2*10^6 chars": "{% set s = 'ab' * 1000000 %}{% for i in range(100000) %}{% set x = s.count('c') %}"
                             "{% endfor %}",
    "50 chained lazy maps": "{% for a in range(1000) %}{% set x = range(100000)" + "|map(attribute='real')" * 50
                            + "|max %}{% endfor %}",
}


class Spy:
    """The budget of the last render, to print how many operations it had counted."""

    def __init__(self) -> None:
        self.last: sandbox.RenderBudget | None = None
        self._budget = sandbox.budget

    @contextlib.contextmanager
    def __call__(self, *args, **kwargs):
        with self._budget(*args, **kwargs) as current:
            self.last = current
            yield current


def limit_named(message: str) -> str:
    if sandbox.OPERATIONS_SETTING in message:
        return "depth" if "deep" in message else "operations"
    if "characters" in message:
        return "size"
    if "loops more than" in message:
        return "iterations"
    return "other"


spy = Spy()
sandbox.budget = spy
print(f"TEMPLATE_RENDER_MAX_OPERATIONS={settings.TEMPLATE_RENDER_MAX_OPERATIONS:,}  "
      f"TEMPLATE_RENDER_MAX_BYTES={settings.TEMPLATE_RENDER_MAX_BYTES:,}  MAX_CALL_DEPTH={sandbox.MAX_CALL_DEPTH}")
print(f"{'bomb':27} {'outcome':21} {'stopped by':10} {'operations':>11} {'CPU ms':>8} {'peak MB':>8}")


def attempt(source: str) -> tuple[str, str]:
    try:
        render(VersionSource(subject="s", html_content=source), variables={}, required=[], optional={}, layout_name="")
    except NotificationError as exc:
        return type(exc).__name__, limit_named(exc.message)
    return "RENDERED (unexpected)", ""


for name, source in BOMBS.items():
    # CPU time without tracemalloc (which slows Python several times), then the peak with it.
    started = time.process_time()
    outcome, stopped_by = attempt(source)
    elapsed = time.process_time() - started
    operations = spy.last.operations if spy.last else 0
    tracemalloc.start()
    attempt(source)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name:27} {outcome:21} {stopped_by:10} {operations:11,} {elapsed * 1000:8.1f} {peak / 1e6:8.1f}")
