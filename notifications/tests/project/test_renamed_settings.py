"""Renamed settings (issue 20, notifications/conf.py): every rename is read by its new name,
by its old environment variable, and by its old Django setting; `manage.py check` warns for
an old name in use; the contract's table is `RENAMES`; and no code but the alias table names
an old setting.
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
from django.test import override_settings

from notifications import conf
from notifications.checks import check_renamed_settings
from notifications.conf import RENAMES

BASE_DIR = Path(settings.BASE_DIR)
OLD_NAMES = re.compile(r"\b(" + "|".join(re.escape(rename.old) for rename in RENAMES) + r")\b")

# Imports config.settings.base with only the given variables set (no `.env`), as
# test_env_example does, and compares what each rename's new setting holds.
PROBE = r"""
import importlib, json, os, sys
import environ

environ.Env.read_env = staticmethod(lambda *args, **kwargs: None)
renames = json.loads(sys.argv[1])

def load(variables):
    os.environ.clear()
    os.environ.update(variables)
    sys.modules.pop("config.settings.base", None)
    return importlib.import_module("config.settings.base")

def other(value, step):
    # A value of the setting's own type, as the variable's text: step 1 differs from the
    # default, step 2 from step 1.
    if isinstance(value, bool):
        return ("false" if value else "true") if step == 1 else ("true" if value else "false")
    if isinstance(value, (int, float)):
        return str(value + 7 * step)
    if isinstance(value, list):
        return ["sendgrid", "amazon_ses"][step - 1]
    return ["7/hour", "9/day"][step - 1]

reference = load({})
results = {}
for old, new in renames:
    default = getattr(reference, new)
    text, second = other(default, 1), other(default, 2)
    by_new = getattr(load({new: text}), new)
    module = load({old: text})
    by_old, old_defined = getattr(module, new), hasattr(module, old)
    both = getattr(load({new: text, old: second}), new)
    results[new] = {"default": repr(default), "by_new": repr(by_new), "by_old": repr(by_old),
                    "both": repr(both), "old_defined": old_defined}
print(json.dumps(results))
"""


def test_each_rename_is_read_from_the_environment_by_its_new_name_and_by_its_old_one():
    pairs = [(rename.old, rename.new) for rename in RENAMES]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(pairs)],
        cwd=BASE_DIR, env={}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    assert sorted(results) == sorted(rename.new for rename in RENAMES)
    for new, seen in results.items():
        # The new name changes the setting; the old one alone gives the same value; with both
        # set (to different values), the new one wins; the settings define no old name.
        assert seen["by_new"] != seen["default"], new
        assert seen["by_old"] == seen["by_new"], new
        assert seen["both"] == seen["by_new"], new
        assert seen["old_defined"] is False, new


def test_the_aliased_environment_answers_a_new_name_from_its_old_one_and_writes_nothing():
    environ = {"EMAIL_SENDING_LEASE_SECONDS": "45", "OUTBOX_SWEEP_SECONDS": "5", "EMAIL_SWEEP_SECONDS": "9"}
    view = conf.AliasedEnviron(environ)
    assert view["OUTBOX_LEASE_SECONDS"] == "45" and "OUTBOX_LEASE_SECONDS" in view
    assert view["OUTBOX_SWEEP_SECONDS"] == "5"  # both set: the new name
    assert "OUTBOX_BATCH_SIZE" not in view
    with pytest.raises(KeyError):
        view["OUTBOX_BATCH_SIZE"]
    assert sorted(view) == sorted(environ) and len(view) == 3
    assert "OUTBOX_LEASE_SECONDS" not in environ


@pytest.mark.parametrize("rename", RENAMES, ids=lambda rename: rename.old)
def test_an_old_django_setting_reaches_the_new_name(rename):
    original = getattr(settings, rename.new)
    value = not original if isinstance(original, bool) else ["sendgrid"] if isinstance(original, list) \
        else original + 7 if isinstance(original, (int, float)) else "7/hour"
    with override_settings(**{rename.old: value}):
        assert getattr(settings, rename.new) == value
    assert getattr(settings, rename.new) == original


@override_settings(EMAIL_MAX_RECIPIENTS_PER_REQUEST=2)
def test_an_old_django_setting_is_the_one_the_code_applies():
    from notifications.exceptions import TooManyRecipients
    from notifications.channels.email.send_checks import check_recipient_count

    check_recipient_count(["a@example.com", "b@example.com"])
    with pytest.raises(TooManyRecipients, match="at most 2"):
        check_recipient_count(["a@example.com", "b@example.com", "c@example.com"])


def test_check_warns_for_an_old_environment_variable_naming_the_new_one(monkeypatch):
    assert [w for w in check_renamed_settings() if w.id == "notifications.W050"] == []
    monkeypatch.setenv("EMAIL_SENDING_LEASE_SECONDS", "45")
    [warning] = check_renamed_settings()
    assert warning.id == "notifications.W050"
    assert "EMAIL_SENDING_LEASE_SECONDS" in warning.msg and "OUTBOX_LEASE_SECONDS" in warning.msg
    assert "ignored" not in warning.msg
    monkeypatch.setenv("OUTBOX_LEASE_SECONDS", "30")
    [warning] = check_renamed_settings()
    assert "OUTBOX_LEASE_SECONDS='30' is used, EMAIL_SENDING_LEASE_SECONDS is ignored" in warning.msg


def test_check_warns_for_an_old_django_setting_and_says_its_value_is_used():
    with override_settings(SMTP_RETRY_MAX_ATTEMPTS=settings.OUTBOX_RETRY_MAX_ATTEMPTS + 4):
        [warning] = check_renamed_settings()
        assert warning.id == "notifications.W050"
        assert "The setting SMTP_RETRY_MAX_ATTEMPTS is deprecated: it is now OUTBOX_RETRY_MAX_ATTEMPTS" in warning.msg
        assert f"SMTP_RETRY_MAX_ATTEMPTS={settings.OUTBOX_RETRY_MAX_ATTEMPTS!r} is used" in warning.msg
    assert check_renamed_settings() == []


PROJECT_SETTINGS = """
from config.settings.test import *  # noqa: F403

EMAIL_SENDING_LEASE_SECONDS = 33
EMAIL_MAX_BATCH_ITEMS = 12
OUTBOX_BATCH_SIZE = 40
EMAIL_DELIVERY_BATCH_SIZE = 41
"""


def test_a_project_settings_module_using_old_names_works_and_manage_py_check_warns(tmp_path):
    """A project's own settings module, as an operator writes one, through `manage.py`."""
    (tmp_path / "project_settings.py").write_text(PROJECT_SETTINGS, encoding="utf-8")
    environment = {
        key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG", "DATABASE_URL"}
    }
    environment.update(DJANGO_SETTINGS_MODULE="project_settings", PYTHONPATH=f"{tmp_path}{os.pathsep}{BASE_DIR}",
                       SMTP_ACTIVE="false")
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "import json; from django.conf import settings as s; print(json.dumps([s.OUTBOX_LEASE_SECONDS, "
         "s.SEND_MAX_BATCH_ITEMS, s.OUTBOX_BATCH_SIZE, s.OUTBOX_ACTIVE]))"],
        cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )
    assert shell.returncode == 0, shell.stderr
    # Both names in the module: the old one wins (base.py always defines the new one).
    assert json.loads(shell.stdout.strip().splitlines()[-1]) == [33, 12, 41, False]
    check = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )
    assert check.returncode == 0, check.stderr
    warnings = [line for line in check.stderr.splitlines() if "notifications.W050" in line]
    assert len(warnings) == 4, check.stderr
    text = "\n".join(warnings)
    assert "The environment variable SMTP_ACTIVE is deprecated: it is now OUTBOX_ACTIVE." in text
    assert "The setting EMAIL_SENDING_LEASE_SECONDS is deprecated: it is now OUTBOX_LEASE_SECONDS." in text
    assert "The setting EMAIL_MAX_BATCH_ITEMS is deprecated: it is now SEND_MAX_BATCH_ITEMS." in text
    assert "EMAIL_DELIVERY_BATCH_SIZE=41 is used; the value OUTBOX_BATCH_SIZE held (40) is ignored." in text


def test_the_contracts_table_of_renames_is_the_alias_table():
    text = (BASE_DIR / "docs" / "CONTRACT.md").read_text(encoding="utf-8")
    section = text.split("### Renamed settings (issue 20)", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| `([A-Z0-9_]+)`([^|]*)\| (\w+) \| ([^|]+) \|$", section, re.MULTILINE)
    assert [(old, new, "not yet in force" not in note, area, since.strip()) for old, new, note, area, since in rows] \
        == [(r.old, r.new, r.in_force, r.area, r.since) for r in RENAMES]
    # The settings table and .env.example name the new names, never an old one as a setting.
    settings_table = text.split("## Settings (environment variables)", 1)[1].split("\n\n| name |", 1)[1]
    settings_table = settings_table.split("\n\n", 1)[0]
    env_example = (BASE_DIR / ".env.example").read_text(encoding="utf-8")
    listed = re.findall(r"`([A-Z][A-Z0-9_]*)`", "\n".join(row.split(" | ")[0] for row in settings_table.splitlines()))
    listed += re.findall(r"^(?:# example: )?([A-Z][A-Z0-9_]*)=", env_example, re.MULTILINE)
    assert [rename.new for rename in RENAMES if rename.new not in listed] == []
    assert [name for name in listed if name in conf.BY_OLD] == []


def code_files() -> list[Path]:
    """Every file of code: Python, templates, the Makefile and CI scripts."""
    here = Path(__file__).resolve()
    allowed = {BASE_DIR / "notifications" / "conf.py", here}
    files = [BASE_DIR / "manage.py", BASE_DIR / "Makefile"]
    for folder in ("notifications", "config", "bench", "docs", "templates", ".ci"):
        root = BASE_DIR / folder
        if root.is_dir():
            files += [path for path in root.rglob("*") if path.is_file() and path.suffix in {".py", ".html", ".txt", ".sh", ""}]
    return [path for path in files if path.resolve() not in allowed and "__pycache__" not in path.parts]


def test_no_code_outside_the_alias_table_names_an_old_setting():
    files = code_files()
    assert len(files) > 100 and BASE_DIR / "config" / "settings" / "base.py" in files
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(BASE_DIR)}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(1)}"
                  for match in OLD_NAMES.finditer(text)]
        # A stem of an old name that no setting in use starts with ("EMAIL_RENDER_MAX_" in a test).
        found += [f"{path.relative_to(BASE_DIR)}: {stem}" for stem in set(STEM.findall(text)) if old_stem(stem)]
    assert found == []


STEM = re.compile(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]*_)(?![A-Za-z0-9_])")


def old_stem(stem: str) -> bool:
    current = [name for name in dir(settings) if name.isupper()]
    return any(rename.old.startswith(stem) for rename in RENAMES) and not any(
        name.startswith(stem) for name in current
    )
