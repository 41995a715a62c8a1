"""Rendering speed (CPU time, steadier than wall time on a shared machine): the invoice (layout, CSS inlining, generated text part), a plain one,
and an itemised invoice of 1,000 lines (a macro, filters and method calls per line: the
template-logic-heavy case the operations budget adds most to).

    .venv/bin/python bench/render.py [N]

Also prints the operations each render counts against TEMPLATE_RENDER_MAX_OPERATIONS.
"""
from __future__ import annotations

import contextlib
import sys
import time

from _setup import peak_rss_mb, setup

setup()

from django.conf import settings  # noqa: E402

from notifications.models import EmailTemplate  # noqa: E402
from notifications.authoring.rendering import VersionSource, render, sandbox  # noqa: E402
from notifications.tests.support import large_templates  # noqa: E402

last_budget: list = []
_budget = sandbox.budget


@contextlib.contextmanager
def _spy(*args, **kwargs):
    with _budget(*args, **kwargs) as current:
        last_budget[:] = [current]
        yield current


sandbox.budget = _spy


def bench(label: str, source: VersionSource, count: int, **args) -> None:
    render(source, **args)  # compile once, as a worker would have
    operations = getattr(last_budget[0], "operations", None) if last_budget else None
    started = time.process_time()
    for _ in range(count):
        render(source, **args)
    elapsed = time.process_time() - started
    counted = f"{operations:>9,} operations" if operations is not None else ""
    print(f"render {label:28} {count} in {elapsed:.2f}s: {count / elapsed:8.0f}/s CPU, "
          f"{elapsed / count * 1e6:7.0f} µs each {counted}")


def bench_saved(key: str, count: int) -> None:
    template = EmailTemplate.objects.get(key=key)
    version = template.versions.get(is_active=True)
    bench(key, VersionSource.of(version), count, variables=template.sample_variables,
          required=template.required_variables, optional=template.optional_variables, layout_name=template.layout)


count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
print(f"TEMPLATE_RENDER_MAX_OPERATIONS={getattr(settings, 'TEMPLATE_RENDER_MAX_OPERATIONS', 'unset')}")
bench_saved("billing_invoice_monthly", count)
bench_saved("incident_alert_critical", count)
bench_saved("account_creation_invitation", count)
invoice = VersionSource(
    subject=large_templates.SUBJECT, preheader=large_templates.PREHEADER, html_content=large_templates.HTML,
    text_content=large_templates.TEXT, cache_key="bench-invoice-1000",
)
bench("invoice of 1,000 lines", invoice, max(1, count // 100), variables=large_templates.invoice_variables(1000),
      required=large_templates.REQUIRED, optional={}, layout_name="default")
print(f"peak RSS {peak_rss_mb():.0f} MB")
