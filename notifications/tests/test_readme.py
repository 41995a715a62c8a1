"""The README's commands run as written on a fresh install.

A new user follows the README from the top: `make run` (its `manage.py` steps, read from the
Makefile, then its server), then the REST API section's shell block, as it is printed, in a
shell. What that block makes must be a Senders service account whose key sends (201), is
refused a template edit (403) and does not open the admin.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from notifications.tests.support.services import require

BASE_DIR = Path(settings.BASE_DIR)
README = (BASE_DIR / "README.md").read_text(encoding="utf-8")
MAKEFILE = (BASE_DIR / "Makefile").read_text(encoding="utf-8")
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_blocks() -> list[str]:
    return SHELL_BLOCK.findall(README)


def api_block() -> str:
    [block] = [block for block in shell_blocks() if "create_api_key" in block]
    return block


def make_run_steps() -> tuple[list[list[str]], list[str]]:
    """`make run`'s manage.py steps (its own and `migrate`'s) and its server command."""
    def recipe(target: str) -> list[str]:
        match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
        assert match, f"no {target} target in the Makefile"
        return [line.strip() for line in match.group(1).splitlines()]

    lines = [line for line in recipe("migrate") + recipe("run") if "manage.py" in line]
    steps = [shlex.split(line.split("manage.py", 1)[1]) for line in lines if "runserver" not in line]
    [server] = [shlex.split(line.split("manage.py", 1)[1]) for line in lines if "runserver" in line]
    return steps, server


def inline_manage_py_commands() -> list[list[str]]:
    """`manage.py ...` commands the README's prose cites in backticks (a span may wrap lines)."""
    spans = re.findall(r"`(?:\.venv/bin/)?(?:python )?manage\.py ([^`]+)`", README)
    return [shlex.split(" ".join(span.split())) for span in spans]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_make_command_of_the_readme_is_a_target():
    targets = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, re.MULTILINE))
    mentioned = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert {"run", "test", "migrate", "worker"} <= mentioned
    assert sorted(mentioned - targets) == []


def test_the_readme_links_only_to_files_in_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link]
    assert "docs/API.md" in local and "docs/CONTRACT.md" in local and "docs/ARCHITECTURE.md" in local
    assert [link for link in local if not (BASE_DIR / link).exists()] == []
    # A name of a document cited without a link must be one of ours too.
    cited = set(re.findall(r"`((?:docs/)?[A-Z_]+\.md)`", README))
    assert sorted(name for name in cited if not (BASE_DIR / name).exists() and not (BASE_DIR / "docs" / name).exists()) == []


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory):
    """A folder where the README's relative paths work, a fresh SQLite database, `make run`'s
    steps done and its server running on a free port (as `make run PORT=...` would)."""
    tmp_path = tmp_path_factory.mktemp("fresh-install")
    for name in (".venv", "manage.py"):
        (tmp_path / name).symlink_to(BASE_DIR / name)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "ENVIRONMENT": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
    }
    python = str(tmp_path / ".venv/bin/python")
    steps, server = make_run_steps()
    for step in steps:
        subprocess.run([python, "manage.py", *step], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300)
    port = free_port()
    address = [arg.replace("$(HOST)", "127.0.0.1").replace("$(PORT)", str(port)) for arg in server]
    process = subprocess.Popen(
        [python, "manage.py", *address, "--noreload"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/schema/", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None:
                    pytest.fail(process.stderr.read().decode())
                time.sleep(0.1)
        yield tmp_path, env, base, port
    finally:
        process.terminate()
        process.wait(timeout=10)


def request(method: str, url: str, *, key: str, body: dict | None = None) -> tuple[int, dict | str, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json",
    })

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        response = urllib.request.build_opener(NoRedirect).open(req, timeout=30)
    except urllib.error.HTTPError as error:
        response = error
    raw = response.read().decode()
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = raw
    return response.status, payload, dict(response.headers)


def test_the_readme_makes_a_senders_service_account_whose_key_sends_but_edits_nothing(fresh_install):
    folder, env, base, port = fresh_install
    for tool in ("bash", "curl", "base64"):
        require(shutil.which(tool) is not None, f"the README's commands need {tool}")
    script = api_block().replace("http://localhost:8000", base)
    key_file = folder / "key.txt"
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}\nprintf '%s' \"$KEY\" > {shlex.quote(str(key_file))}"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    key = key_file.read_text()
    assert key.startswith("ntf_live_")
    # The README's own curl send answered 201 (--fail-with-body) with the queued message.
    assert '"status":"queued"' in result.stdout.replace(" ", "")
    assert "reseller@techconnect.bj" in result.stdout

    status, body, _ = request("POST", f"{base}/api/v1/email/send", key=key, body={
        "to": "partner@example.com", "template_key": "onboarding_welcome",
        "variables": {"reseller_name": "Tech Connect SA", "validation_link": "https://example.com/p"},
    })
    assert status == 201, body
    status, body, _ = request("PUT", f"{base}/api/v1/email/templates/onboarding_welcome", key=key, body={
        "language": "fr", "subject": "x", "html_content": "<p>x</p>", "text_content": "x",
    })
    assert status == 403, body
    status, _, headers = request("GET", f"{base}/admin/", key=key)
    assert status == 302 and "/admin/login/" in headers["Location"]

    account = subprocess.run(
        [str(folder / ".venv/bin/python"), "manage.py", "shell", "-c",
         "import json; from django.contrib.auth import get_user_model as U; "
         "u = U().objects.get(username='billing-service'); c = U().objects.get(username='ci-bot'); "
         "print(json.dumps({'staff': u.is_staff or c.is_staff, 'password': u.has_usable_password() or c.has_usable_password(), "
         "'groups': sorted(u.groups.values_list('name', flat=True)), 'keys': [k.is_test for k in u.api_keys.order_by('created_at')] "
         "+ [k.is_test for k in c.api_keys.all()]}))"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    assert json.loads(account.stdout.strip().splitlines()[-1]) == {
        "staff": False, "password": False, "groups": ["Senders"], "keys": [False, False, True],
    }


def test_the_manage_py_commands_the_readme_cites_in_its_prose_run(fresh_install):
    folder, env, _, _ = fresh_install
    commands = inline_manage_py_commands()
    assert ["sweep_messages"] in commands and ["check", "--database", "default"] in commands
    for args in commands:
        result = subprocess.run([str(folder / ".venv/bin/python"), "manage.py", *args], cwd=folder, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (args, result.stderr)
