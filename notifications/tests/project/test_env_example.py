""".env.example lists every setting, and each value it shows as a default is the real one;
docs/CONTRACT.md's settings table names every variable the settings read.

The reference is `config.settings.base` imported in a process with an empty environment
(and no `.env`): the test settings pin other values, so they cannot be it.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)



def contract_settings() -> list[str]:
    """The names in the first column of docs/CONTRACT.md's settings table."""
    text = (BASE_DIR / "docs" / "CONTRACT.md").read_text(encoding="utf-8")
    section = text.split("## Settings (environment variables)", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n\n| name |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split(" | ")[0])]


# `NAME=value`: the real default. `# example: NAME=value`: an example for a setting with no
# fixed default. A name only mentioned in a comment's prose does not count.
DEFAULT_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)
EXAMPLE_LINE = re.compile(r"^# example: ([A-Z][A-Z0-9_]*)=(.*)$", re.MULTILINE)
# Every variable the settings module reads: env("X", ...), env.str("X", ...), env.list(\n "X" ...
READ_BY_SETTINGS = re.compile(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"")

# Imports config.settings.base once with an empty environment and once per `NAME=value`
# line with only that variable set, and prints the settings that line changes. A developer's
# own .env must not leak into the reference, so reading it is switched off.
PROBE = r"""
import importlib, json, os, sys
import environ

environ.Env.read_env = staticmethod(lambda *args, **kwargs: None)

def load(variables):
    os.environ.clear()
    os.environ.update(variables)
    sys.modules.pop("config.settings.base", None)
    module = importlib.import_module("config.settings.base")
    return {name: value for name, value in vars(module).items() if name.isupper()}

lines = json.loads(sys.argv[1])
reference = load({})
changed = {}
for name, value in lines:
    seen = load({name: value})
    diff = {key: [repr(reference.get(key)), repr(seen.get(key))] for key in reference.keys() | seen.keys()
            if reference.get(key) != seen.get(key)}  # == : 10 and 10.0 are the same default
    if diff:
        changed[f"{name}={value}"] = diff
print(json.dumps(changed))
"""


def env_example() -> str:
    return (BASE_DIR / ".env.example").read_text(encoding="utf-8")


def test_every_shown_default_is_what_the_settings_give_with_an_empty_environment():
    lines = DEFAULT_LINE.findall(env_example())
    assert len(lines) > 40
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(lines)],
        cwd=BASE_DIR, env={}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}


def test_the_reported_example_values_are_marked_as_examples():
    """The first-hour report: `RGZ Notifications` and `support@rgz.bj` looked like defaults."""
    defaults = dict(DEFAULT_LINE.findall(env_example()))
    examples = dict(EXAMPLE_LINE.findall(env_example()))
    assert defaults["SMTP_FROM_NAME"] == "Notifications" and defaults["SMTP_REPLY_TO"] == ""
    assert examples["SMTP_FROM_NAME"] == "RGZ Notifications" and examples["SMTP_REPLY_TO"] == "support@rgz.bj"


def test_each_setting_is_listed_once_as_a_default_or_as_an_example():
    text = env_example()
    defaults = [name for name, _ in DEFAULT_LINE.findall(text)]
    examples = {name for name, _ in EXAMPLE_LINE.findall(text)}
    assert sorted({n for n in defaults if defaults.count(n) > 1}) == []
    listed = set(defaults) | examples
    read = set(READ_BY_SETTINGS.findall((BASE_DIR / "config/settings/base.py").read_text(encoding="utf-8")))
    assert len(read) > 50
    assert sorted(read - listed) == []
    contract = contract_settings()
    assert len(contract) == len(set(contract)) > 50
    assert [name for name in contract if name not in listed] == []
    # Every variable the settings read is in the contract's table.
    assert sorted(read - set(contract)) == []
    # Anything else commented out in assignment form would read as a default to a newcomer.
    unmarked = re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE)
    assert unmarked == []
