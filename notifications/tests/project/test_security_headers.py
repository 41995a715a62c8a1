"""Answers' security headers (issue 16): a Content-Security-Policy on the admin, the API, the
browsable API and the docs, a view's own stricter policy kept; HSTS of a year in production,
from its setting. The browser's view of the policy is `test_csp_browser.py`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from notifications.access.groups import SENDERS
from notifications.tests.support.api import create_key, make_user

pytestmark = pytest.mark.django_db

POLICY = "Content-Security-Policy"


@pytest.fixture
def sender_key(default_templates) -> str:
    return create_key(make_user("svc", SENDERS))


def test_every_kind_of_page_carries_the_policy(admin_client, sender_key, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ["hook:s3cret"]}
    answers = {
        "admin login": Client().get("/admin/login/"),
        "admin index": admin_client.get("/admin/"),
        "API (JSON)": Client().get("/api/v1/email/templates", headers={"Authorization": f"Bearer {sender_key}"}),
        "API error": Client().get("/api/v1/email/templates"),
        "browsable API": admin_client.get("/api/v1/email/templates", headers={"Accept": "text/html"}),
        "API docs": Client().get("/api/docs/"),
        "API schema": Client().get("/api/schema/"),
        "webhook": Client().post("/anymail/sendgrid/tracking/", data=b"[]", content_type="application/json"),
    }
    assert {name: answer.get(POLICY) for name, answer in answers.items()} == {
        name: settings.CONTENT_SECURITY_POLICY for name in answers
    }
    assert "text/html" in answers["browsable API"]["Content-Type"]


def test_the_docs_page_holds_no_inline_script_its_start_up_script_is_a_file():
    page = Client().get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    [start_up] = [re.search(r'src="([^"]+)"', attributes)[1] for attributes, _ in scripts if "script=" in attributes]
    script = Client().get(start_up.replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_a_view_with_a_policy_of_its_own_keeps_it(settings):
    from django.http import HttpResponse

    from notifications.middleware import ContentSecurityPolicyMiddleware

    def sandboxed(request):
        response = HttpResponse(b"attachment")
        response[POLICY] = "sandbox"
        return response

    assert ContentSecurityPolicyMiddleware(sandboxed)(None)[POLICY] == "sandbox"
    settings.CONTENT_SECURITY_POLICY = ""
    assert POLICY not in Client().get("/admin/login/")


# --- HSTS -------------------------------------------------------------------------------------

# A process with the given environment only, as a deployment starts: it asks for the docs
# over HTTPS through Django's test client and prints the answer's HSTS header.
PROBE = r"""
import json, django, environ
environ.Env.read_env = staticmethod(lambda *args, **kwargs: None)  # a developer's .env must not leak in
django.setup()
from django.conf import settings
from django.test import Client
answer = Client().get("/api/docs/", secure=True)
print(json.dumps({"setting": settings.SECURE_HSTS_SECONDS, "status": answer.status_code,
                  "header": answer.get("Strict-Transport-Security")}))
"""


def served_hsts(tmp_path: Path, **environment: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "CELERY_BROKER_URL": "", **environment,
    }
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_sends_hsts_of_a_year(tmp_path):
    assert served_hsts(tmp_path, ENVIRONMENT="production") == {
        "setting": 31536000, "status": 200, "header": "max-age=31536000"}


def test_hsts_comes_from_its_setting(tmp_path):
    assert served_hsts(tmp_path, ENVIRONMENT="production", SECURE_HSTS_SECONDS="600")["header"] == "max-age=600"
    assert served_hsts(tmp_path, ENVIRONMENT="staging")["header"] == "max-age=3600"
