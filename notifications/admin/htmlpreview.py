"""Showing HTML that someone else wrote (inbound mail, a message) inside a staff page.

Only ever in an `iframe` with `sandbox=""`: no scripts, no forms, no plugins, no top
navigation, and an opaque origin, so the HTML can read neither the admin's cookies nor its
pages. The document also carries its own Content-Security-Policy, which forbids every
fetch but inline styles and `data:` images: reading a mail in the admin loads nothing from
its sender's servers (no tracking pixel fires, no remote stylesheet).
"""
from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

#: The CSP inside the frame; `sandbox=""` already stops scripts, this also stops fetches.
FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"


def sandboxed_iframe(html: str, *, title: str, height: int = 480) -> SafeString:
    """An `iframe` showing `html` through `srcdoc`, sandboxed and with a strict CSP."""
    document = f'<meta http-equiv="Content-Security-Policy" content="{FRAME_POLICY}">{html}'
    return format_html(
        '<iframe sandbox="" referrerpolicy="no-referrer" title="{}" srcdoc="{}" '
        'style="width:100%;height:{}px;border:1px solid #ccc;background:#fff"></iframe>',
        title, document, height,
    )
