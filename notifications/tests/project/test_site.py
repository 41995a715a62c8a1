"""The site around the API: `/`, the admin's "View site", and where `make run` listens."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from config.settings.base import development_hosts
from notifications.tests.support.services import require

pytestmark = pytest.mark.django_db


def test_root_leads_to_the_admin_in_development(client, settings):
    settings.ENVIRONMENT = "development"
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.parametrize("environment", ["preview", "staging", "production"])
def test_root_is_a_page_linking_to_the_admin_and_the_api_docs_elsewhere(client, settings, environment):
    settings.ENVIRONMENT = environment
    response = client.get("/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    links = re.findall(r'href="([^"]+)"', response.content.decode())
    assert "/admin/" in links and any(link.rstrip("/") == "/api/docs" for link in links)
    for link in links:
        assert client.get(link).status_code in (200, 302), link


def test_view_site_in_the_admin_opens_the_api_docs(admin_client):
    page = admin_client.get("/admin/").content.decode()
    [view_site] = re.findall(r'<a href="([^"]+)">[^<]*(?:View site|Voir le site)', page)
    assert view_site.rstrip("/") == "/api/docs"
    docs = admin_client.get(view_site)
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_allowed_hosts_in_development_follow_the_address_make_run_listens_on():
    assert development_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "[::1]"]
    assert development_hosts("192.168.1.20") == ["localhost", "127.0.0.1", "[::1]", "192.168.1.20"]
    assert development_hosts("0.0.0.0") == ["*"] and development_hosts("[::]") == ["*"]
    assert development_hosts("[::1]") == ["localhost", "127.0.0.1", "[::1]"]


def make_run_commands(*args: str) -> str:
    """What `make run` would run (`make -n`), with a shell HOST that must not leak in (zsh sets one)."""
    require(shutil.which("make") is not None, "make is not installed")
    # Run as a person runs it, with the default .venv: not inside `make test VENV=...`, whose
    # command-line variables make exports to the environment and passes to a nested make.
    outer_make = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VENV"}
    env = {**{k: v for k, v in os.environ.items() if k not in outer_make}, "HOST": "some-laptop.local", "PORT": "9999"}
    result = subprocess.run(
        ["make", "-n", "run", *args], cwd=Path(settings.BASE_DIR), env=env,
        capture_output=True, text=True, timeout=60, check=True,
    )
    [line] = [line for line in result.stdout.splitlines() if "runserver" in line]
    return line


def test_make_run_listens_on_localhost_port_8000_unless_told_otherwise():
    assert make_run_commands().endswith("RUNSERVER_HOST=127.0.0.1 .venv/bin/python manage.py runserver 127.0.0.1:8000")
    assert make_run_commands("PORT=8001").endswith("runserver 127.0.0.1:8001")
    assert make_run_commands("HOST=0.0.0.0").endswith("RUNSERVER_HOST=0.0.0.0 .venv/bin/python manage.py runserver 0.0.0.0:8000")
