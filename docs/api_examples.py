"""Make the worked examples of docs/API.md by running each request against the app.

    .venv/bin/python docs/api_examples.py            # print them
    .venv/bin/python docs/api_examples.py --write    # put them into docs/API.md


Runs on a throwaway SQLite database with the default settings of a fresh install (console
mail replaced by Django's in-memory outbox, Celery eager), the default templates loaded and
keys made by `create_api_key`, in English (`Accept-Language: en`), then prints every request and its answer as the Markdown
blocks API.md uses: a marker line `` `METHOD /path` `` before each request body and
`` `HTTP 201` `` before each answer, each example between `<!-- example: NAME -->` and
`<!-- /example -->` (what `--write` replaces; the prose around them is written by hand).
Long strings (HTML) are cut with "…" for reading; ids and times are whatever this run
produced. notifications/tests/test_api_docs.py checks the result against the schema, and
that the page still shows what the app answers today.
"""
from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = tempfile.mkdtemp(prefix="api-examples-")
os.environ.update({
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "ENVIRONMENT": "development",
    "DATABASE_URL": f"sqlite:///{WORKDIR}/db.sqlite3",
    "CELERY_BROKER_URL": "",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "ALLOWED_HOSTS": "localhost",
    "EMAIL_TEST_RECIPIENTS": "editor@rgz.bj",
})

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402

CUT = 120


def shorten(value):
    if isinstance(value, str) and len(value) > CUT + 40:
        return value[:CUT] + "…"
    if isinstance(value, dict):
        return {key: shorten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten(item) for item in value]
    return value


def soon(days: int, time: str) -> str:
    """A date `days` ahead (send_at may be at most OUTBOX_MAX_SCHEDULE_DAYS ahead)."""
    import datetime

    return f"{datetime.date.today() + datetime.timedelta(days=days)}T{time}"


def dump(value) -> str:
    """Indented JSON, with a long list of short strings (addresses) kept on a few lines."""
    text = json.dumps(value, ensure_ascii=False, indent=2)

    def compact(match) -> str:
        items = re.findall(r'"[^"\n]*"', match.group(0))
        if len(items) <= 6:
            return match.group(0)
        indent = match.group(1)
        lines = [", ".join(items[i:i + 4]) for i in range(0, len(items), 4)]
        return "[\n" + ",\n".join(indent + "  " + line for line in lines) + "\n" + indent + "]"

    return re.sub(r'\[\n( *)  "[^\n]*"(?:,\n *"[^\n]*")*\n *\]', compact, text)


def key_for(username: str, *groups: str, test: bool = False) -> str:
    args = [username, "--create-user", *sum((["--group", group] for group in groups), [])]
    out = io.StringIO()
    call_command("create_api_key", *args, *(["--test"] if test else []), stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


class Doc:
    """Runs each example and keeps its Markdown, by name."""

    def __init__(self) -> None:
        self.client = Client(HTTP_HOST="localhost", HTTP_ACCEPT_LANGUAGE="en")
        self.snippets: dict[str, str] = {}

    def call(self, title: str, method: str, path: str, *, key: str | None, body=None, raw: str | None = None,
             content_type: str = "application/json", headers: dict | None = None, note: str = ""):
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
        data = raw if raw is not None else (json.dumps(body, ensure_ascii=False) if body is not None else None)
        kwargs = {"content_type": content_type, "data": data} if data is not None else {}
        response = getattr(self.client, method.lower())(path, headers=headers, **kwargs)
        shown = {name: value for name, value in headers.items() if name != "Authorization"}
        if key is None and "Authorization" in headers:
            shown["Authorization"] = headers["Authorization"].split()[0] + " ntf_live_…"
        who = "" if key or "Authorization" in headers else " (no key)"
        extra = "".join(f" `{name}: {value}`" for name, value in shown.items())
        lines = [f"`{method} {path}`{who}{extra}{note}"]
        if raw is not None:
            lines.append(f"```\n{raw}\n```")
        elif body is not None:
            lines.append("```json\n" + dump(body) + "\n```")
        retry = f" `Retry-After: {response['Retry-After']}`" if response.has_header("Retry-After") else ""
        etag = f" `ETag: {response['ETag']}`" if response.has_header("ETag") else ""
        lines.append(f"\n`HTTP {response.status_code}`{retry}{etag}")
        answer = json.loads(response.content) if response.content else None
        lines.append("```json\n" + json.dumps(shorten(answer), ensure_ascii=False, indent=2) + "\n```")
        self.snippets[title] = "\n".join(lines) + "\n"
        self.last = response
        return response.status_code, answer


REGION = re.compile(r"^<!-- example: (\S+) -->\n(.*?)^<!-- /example -->\n", re.MULTILINE | re.DOTALL)


def write_into(path: Path, snippets: dict[str, str]) -> None:
    """Replace each `<!-- example: NAME -->` ... `<!-- /example -->` region of `path`."""
    text = path.read_text(encoding="utf-8")
    named = {name for name, _ in REGION.findall(text)}
    missing = sorted(set(snippets) - named)
    if missing:
        raise SystemExit(f"{path} has no region for: {', '.join(missing)}")
    text = REGION.sub(lambda m: f"<!-- example: {m.group(1)} -->\n{snippets[m.group(1)]}<!-- /example -->\n", text)
    path.write_text(text, encoding="utf-8")


def run_examples() -> dict[str, str]:
    setup_test_environment()
    call_command("migrate", verbosity=0)
    call_command("load_default_templates", stdout=io.StringIO())
    sender = key_for("billing-service", "Senders")
    other = key_for("support-service", "Senders")
    editor = key_for("template-editor", "Template editors")
    auditor = key_for("audit", "Auditors")
    doc = Doc()

    welcome = {"to": "john@techconnect.bj", "template_key": "onboarding_welcome",
               "variables": {"reseller_name": "Tech Connect SA", "validation_link": "https://admin-rgz.duckdns.org",
                             "estimated_duration": "7-12 jours"}}
    _, sent = doc.call("send", "POST", "/api/v1/email/send", key=sender, body=welcome,
                       headers={"Idempotency-Key": "welcome-techconnect-1"})
    message_id = sent["items"][0]["id"]
    doc.call("send-scheduled", "POST", "/api/v1/email/send", key=sender, body={
        "to": "reseller@techconnect.bj", "cc": ["billing@techconnect.bj"], "template_key": "sla_credit_notification",
        "variables": {"amount_fcfa": "12500", "downtime_minutes": "95", "sla_percent": "99.78",
                      "invoice_number": "INV-2026-0001"},
        "send_at": soon(30, "08:00:00+01:00"), "source_endpoint": "billing"})
    doc.call("send-batch", "POST", "/api/v1/email/send-batch", key=sender, body={
        "template_key": "rma_confirmation", "items": [
            {"to": "a@techconnect.bj", "variables": {"rma_number": "RMA-2026-000123", "serial_number": "LBE5AC-7C4B21D9",
                                                     "status": "Reçu", "link_tracking": "https://rgz.bj/rma/123"}},
            {"to": "b@techconnect.bj", "variables": {"rma_number": "RMA-2026-000124"}},
        ]})
    doc.call("templates", "GET", "/api/v1/email/templates?category=billing", key=sender)
    doc.call("template", "GET", "/api/v1/email/templates/support_ticket_created", key=sender)
    etag = doc.last["ETag"]
    ticket = {
        "language": "fr", "subject": "Ticket #{{ ticket_number }} — {{ title }}",
        "preheader": "Priorité {{ priority }}",
        "html_content": "<p>Votre ticket {{ ticket_number }} ({{ priority }}) : {{ title }}.</p>"
                        "<p><a href=\"{{ support_link }}\">Suivre le ticket</a></p>",
        "text_content": "Votre ticket {{ ticket_number }} ({{ priority }}) : {{ title }}.\n{{ support_link }}"}
    doc.call("template-put", "PUT", "/api/v1/email/templates/support_ticket_created", key=editor, body=ticket,
             headers={"If-Match": etag})
    doc.call("409-stale", "PUT", "/api/v1/email/templates/support_ticket_created", key=editor, body={
        **ticket, "subject": "Votre ticket #{{ ticket_number }} : {{ title }}"}, headers={"If-Match": etag},
        note=" — refused")
    doc.call("template-test", "POST", "/api/v1/email/templates/onboarding_welcome/test", key=editor, body={
        "to": "editor@rgz.bj", "variables": {"reseller_name": "Tech Connect SA",
                                             "validation_link": "https://admin-rgz.duckdns.org"}})
    doc.call("messages", "GET", "/api/v1/email/messages?to=john@techconnect.bj&limit=10", key=auditor)
    doc.call("message", "GET", f"/api/v1/email/messages/{message_id}", key=sender)
    _, scheduled = doc.call("send-to-cancel", "POST", "/api/v1/email/send", key=sender, body={
        **welcome, "to": "later@techconnect.bj", "send_at": soon(7, "09:00:00Z")})
    doc.call("cancel", "POST", f"/api/v1/email/messages/{scheduled['items'][0]['id']}/cancel", key=sender)

    # --- errors ---
    doc.call("400-fields", "POST", "/api/v1/email/send", key=sender, body={
        "to": "john@", "template_key": "onboarding_welcome", "variables": {}}, note=" — refused")
    doc.call("400-variables", "POST", "/api/v1/email/send", key=sender, body={
        "to": "john@techconnect.bj", "template_key": "onboarding_welcome", "variables": {}}, note=" — refused")
    doc.call("400-json", "POST", "/api/v1/email/send", key=sender, raw='{"to": "john@techconnect.bj",', note=" — refused")
    doc.call("401", "POST", "/api/v1/email/send", key=None, body=welcome)
    doc.call("401-scheme", "GET", "/api/v1/email/templates", key=None, headers={"Authorization": f"Token {sender}"})
    doc.call("403", "PUT", "/api/v1/email/templates/support_ticket_created", key=sender, body={
        "subject": "x", "html_content": "<p>x</p>"})
    doc.call("404-template", "POST", "/api/v1/email/send", key=sender, body={**welcome, "template_key": "no_such_template"},
             note=" — refused")
    doc.call("404-other", "GET", f"/api/v1/email/messages/{message_id}", key=other)
    doc.call("409", "POST", f"/api/v1/email/messages/{message_id}/cancel", key=sender)
    doc.call("413", "POST", "/api/v1/email/send", key=sender, body={
        **welcome, "to": [f"user{n}@techconnect.bj" for n in range(51)]}, note=" — refused")
    doc.call("415", "POST", "/api/v1/email/send", key=sender, raw="to=john@techconnect.bj",
             content_type="application/x-www-form-urlencoded")
    doc.call("422", "POST", "/api/v1/email/send", key=sender, body={**welcome, "to": "other@techconnect.bj"},
             headers={"Idempotency-Key": "welcome-techconnect-1"})
    rates = {"api": "2/minute", "send": "1000/minute"}
    with override_settings(REST_FRAMEWORK={**django.conf.settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        from django.core.cache import cache

        cache.clear()
        limited = key_for("throttled", "Senders")
        for _ in range(2):
            doc.client.get("/api/v1/email/templates", headers={"Authorization": f"Bearer {limited}"})
        doc.call("429", "GET", "/api/v1/email/templates", key=limited)
    return doc.snippets


def main() -> None:
    snippets = run_examples()
    if "--write" in sys.argv[1:]:
        write_into(ROOT / "docs" / "API.md", snippets)
        return
    for name, snippet in snippets.items():
        print(f"<!-- example: {name} -->\n{snippet}<!-- /example -->\n")


if __name__ == "__main__":
    main()
