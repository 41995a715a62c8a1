"""Rendering speed: the invoice (layout, CSS inlining, generated text part) and a plain one.

    .venv/bin/python bench/render.py [N]
"""
from __future__ import annotations

import sys
import time

from _setup import peak_rss_mb, setup

setup()

from notifications.models import EmailTemplate  # noqa: E402
from notifications.rendering import VersionSource, render  # noqa: E402


def bench(key: str, count: int) -> None:
    template = EmailTemplate.objects.get(key=key)
    version = template.versions.get(is_active=True)
    source = VersionSource.of(version)
    args = dict(variables=template.sample_variables, required=template.required_variables,
                optional=template.optional_variables, layout_name=template.layout)
    render(source, **args)  # compile once, as a worker would have
    started = time.perf_counter()
    for _ in range(count):
        render(source, **args)
    elapsed = time.perf_counter() - started
    print(f"render {key:28} {count} in {elapsed:.2f}s: {count / elapsed:8.0f}/s, {elapsed / count * 1e6:7.0f} µs each")


count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
bench("billing_invoice_monthly", count)
bench("incident_alert_critical", count)
bench("account_creation_invitation", count)
print(f"peak RSS {peak_rss_mb():.0f} MB")
