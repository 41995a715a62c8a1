"""The README's commands run as written on a fresh install.

A new user follows the README from the top: `make run` (its `manage.py` steps, read from the
Makefile, then its server), then every shell block, in the order written, as printed, in one
shell (a block the test cannot run says so just above it, with its reason). What they make
must be a Senders service account whose key sends (201), is refused a template edit (403)
and does not open the admin; staff accounts with a set-password link; each failure on
demand in its status. Nothing may be left behind: no file in the folder, none in $TMPDIR.
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
SHELL_BLOCK = re.compile(r"^(?:<!-- test_readme: not run \((?P<reason>[^)]+)\) -->\n)?```sh\n(?P<body>.*?)^```",
                         re.MULTILINE | re.DOTALL)
BASE_LINE = re.compile(r"^BASE=\S+", re.MULTILINE)


def shell_blocks() -> list[tuple[str | None, str]]:
    """Every ```sh block, in order, with the reason the test does not run it (None: it does)."""
    return [(match["reason"], match["body"]) for match in SHELL_BLOCK.finditer(README)]


def runnable_script(base: str) -> str:
    """The blocks the test runs, in the order written, as one shell session, `BASE` set to `base`."""
    script = "\n".join(body for reason, body in shell_blocks() if reason is None)
    assert len(BASE_LINE.findall(script)) == 1, "one BASE=... line, before the first use of $BASE"
    return BASE_LINE.sub(f"BASE={base}", script)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {github_slug(title) for title in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


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
    return [shlex.split(span) for span in dict.fromkeys(" ".join(span.split()) for span in spans)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_make_command_of_the_readme_is_a_target():
    targets = set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, re.MULTILINE))
    mentioned = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert {"run", "test", "test-full", "migrate", "worker"} <= mentioned
    assert sorted(mentioned - targets) == []


def test_only_blocks_that_say_why_are_left_out_and_no_command_leaves_a_file_in_the_folder():
    blocks = shell_blocks()
    assert len(blocks) == README.count("```sh")
    left_out = [body.split()[0:2] for reason, body in blocks if reason]
    assert left_out == [["make", "run"], ["export", "CELERY_BROKER_URL=redis://127.0.0.1:6379/0"]], left_out
    script = runnable_script("http://127.0.0.1:1")
    # A file the examples need is made in $TMPDIR and removed (no stray invoice.pdf, no repo/).
    assert "> invoice.pdf" not in script and "mktemp" in script
    assert "localhost:8000" not in README


def test_every_route_of_docs_api_md_has_its_first_example_in_the_readme_or_a_link_to_it():
    api = (BASE_DIR / "docs" / "API.md").read_text(encoding="utf-8")
    routes = re.findall(r"^### ((?:GET|POST|PUT|PATCH|DELETE) /api/\S+)$", api, re.MULTILINE)
    assert len(routes) >= 9
    assert [route for route in routes if f"(docs/API.md#{github_slug(route)})" not in README] == []


def test_every_anchor_the_readme_links_to_exists():
    links = re.findall(r"\]\(([^)\s]*)#([^)\s]+)\)", README)
    assert links
    missing = []
    for target, anchor in links:
        text = README if not target else (BASE_DIR / target).read_text(encoding="utf-8")
        if anchor not in anchors(text):
            missing.append(f"{target}#{anchor}")
    assert missing == []


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
    home, scratch = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("tmpdir")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(scratch), "LANG": "C.UTF-8",
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


def files_under(folder: Path) -> set[str]:
    """Every file and folder (the running server's SQLite journal files are the database's)."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*")
            if ".venv" not in path.parts and not path.name.startswith("db.sqlite3-")}


def django_shell(folder: Path, env: dict, code: str):
    result = subprocess.run([str(folder / ".venv/bin/python"), "manage.py", "shell", "-c", code], cwd=folder,
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_readme_commands_run_in_the_order_written_and_leave_no_file_behind(fresh_install, tmp_path):
    folder, env, base, port = fresh_install
    for tool in ("bash", "curl", "base64", "mktemp"):
        require(shutil.which(tool) is not None, f"the README's commands need {tool}")
    before = files_under(folder)
    keys = tmp_path / "keys.json"  # outside the folder: the folder must end as it began
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{runnable_script(base)}\n"
                       f'printf \'{{"live": "%s", "test": "%s"}}\' "$KEY" "$TEST_KEY" > {shlex.quote(str(keys))}'],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert files_under(folder) == before, "the README's commands left files behind"
    assert list(Path(env["TMPDIR"]).iterdir()) == [], "the README's commands left temporary files behind"
    key, test_key = json.loads(keys.read_text()).values()
    assert key.startswith("ntf_live_") and test_key.startswith("ntf_test_")
    output = result.stdout.replace(" ", "")
    # The README's own curl send answered 201 (--fail-with-body) with the queued message,
    # the template list its billing templates, the test render its rendering.
    assert '"status":"queued"' in output and "reseller@techconnect.bj" in output
    assert '"key":"billing_invoice_monthly"' in output and '"to":"editor@example.com"' in output
    # create_staff and ensure_admin --reset printed links to this server, and no password.
    links = re.findall(rf"{re.escape(base)}/admin/staff-link/[^/\s]+/[^/\s]+/", result.stdout)
    assert len(links) == 3, result.stdout
    assert "password:" not in result.stdout + result.stderr

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
    # `make run`'s development backend honours them for a live key too, failing as a server would.
    status, body, _ = request("POST", f"{base}/api/v1/email/send", key=key, body={
        "to": "permanent-failure@simulator.invalid", "template_key": "onboarding_welcome",
        "variables": {"reseller_name": "Tech Connect SA", "validation_link": "https://example.com/p"},
    })
    assert status == 201, body
    status, body, _ = request("GET", f"{base}/api/v1/email/messages/{body['items'][0]['id']}", key=key)
    assert (body["status"], [a["outcome"] for a in body["delivery_attempts"]]) == ("failed", ["permanent"]), body
    assert body["delivery_attempts"][0]["server"] == "development"

    # Each failure on demand, sent with the test key and drained in the web process (eager):
    # a temporary failure may have had its retry already (its backoff is random from 0).
    found = {}
    for address in ("temporary-failure", "permanent-failure", "timeout", "outage"):
        status, body, _ = request("GET", f"{base}/api/v1/email/messages?to={address}@simulator.invalid", key=test_key)
        assert status == 200 and len(body["items"]) == 1, body
        status, body, _ = request("GET", f"{base}/api/v1/email/messages/{body['items'][0]['id']}", key=test_key)
        found[address] = (body["status"], body["attempts"])
    assert found["temporary-failure"] in (("queued", 1), ("failed", 2)), found
    assert (found["permanent-failure"], found["timeout"], found["outage"]) == (("failed", 1), ("failed", 1),
                                                                                ("queued", 0)), found

    services, staff = django_shell(folder, env, (
        "import json; from django.contrib.auth import get_user_model as U; "
        "u = U().objects.get(username='billing-service'); c = U().objects.get(username='ci-bot'); "
        "print(json.dumps([{'staff': u.is_staff or c.is_staff, 'password': u.has_usable_password() or c.has_usable_password(), "
        "'groups': sorted(u.groups.values_list('name', flat=True)), 'keys': [k.is_test for k in u.api_keys.order_by('created_at')] "
        "+ [k.is_test for k in c.api_keys.all()]}, {s.username: [s.is_staff, s.is_superuser, s.has_usable_password(), "
        "list(s.groups.values_list('name', flat=True))] for s in U().objects.filter(is_staff=True)}]))"
    ))
    assert services == {"staff": False, "password": False, "groups": ["Senders"], "keys": [False, False, True]}
    assert staff == {"admin": [True, True, True, []], "ama@rgz.bj": [True, False, False, ["Template editors"]],
                     "kofi@rgz.bj": [True, False, False, ["Auditors"]]}


def test_the_manage_py_commands_the_readme_cites_in_its_prose_run(fresh_install):
    folder, env, _, _ = fresh_install
    commands = inline_manage_py_commands()
    assert ["sweep_messages"] in commands and ["check", "--database", "default"] in commands
    for args in commands:
        result = subprocess.run([str(folder / ".venv/bin/python"), "manage.py", *args], cwd=folder, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (args, result.stderr)
