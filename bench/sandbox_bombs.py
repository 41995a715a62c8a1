"""Memory and time of hostile templates: each must fail fast with a small peak.

    .venv/bin/python bench/sandbox_bombs.py
"""
from __future__ import annotations

import time
import tracemalloc

from _setup import setup

setup()

from notifications.exceptions import NotificationError  # noqa: E402
from notifications.rendering import VersionSource, render  # noqa: E402

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
}
for name, source in BOMBS.items():
    tracemalloc.start()
    started = time.perf_counter()
    try:
        render(VersionSource(subject="s", html_content=source), variables={}, required=[], optional={}, layout_name="")
        outcome = "RENDERED (unexpected)"
    except NotificationError as exc:
        outcome = type(exc).__name__
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name:20} {outcome:24} {elapsed * 1000:8.1f} ms  peak {peak / 1e6:6.1f} MB")
