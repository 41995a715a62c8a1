"""The contract of issue 20: the core, the outbox and the policies import no channel.

Read from the source (as `test_lifecycle.py` guards the one writer of status): every
`import` and `from … import` of a module under `notifications/core` (with the outbox) and
`notifications/policies`, at module level or inside a function, a class or a
`TYPE_CHECKING` block, relative ones resolved. A channel is reached through the registry
(`notifications.core.channels`), never by name.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings

APP = Path(settings.BASE_DIR) / "notifications"
GUARDED = ("core", "policies")  # core/ holds the outbox
FORBIDDEN = "notifications.channels"


def guarded_modules() -> list[Path]:
    return sorted(path for folder in GUARDED for path in (APP / folder).rglob("*.py"))


def dotted(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, *, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import in `source` (a module of `package`), wherever it
    stands; `from x import y` gives both `x` and `x.y` (y may be a module)."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def forbidden(found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [(line, module) for line, module in found if module == FORBIDDEN or module.startswith(FORBIDDEN + ".")]


def channel_imports(path: Path) -> list[str]:
    package = dotted(path) if path.name == "__init__.py" else dotted(path).rpartition(".")[0]
    return [f"{path.relative_to(APP.parent)}:{line} imports {module}"
            for line, module in forbidden(imported_modules(path.read_text(), package=package))]


def test_the_guarded_packages_exist():
    modules = {dotted(path) for path in guarded_modules()}
    assert {"notifications.core.channels", "notifications.core.providers", "notifications.core.outbox.drain",
            "notifications.core.outbox.lifecycle", "notifications.core.outbox.retries",
            "notifications.policies.suppression"} <= modules


@pytest.mark.parametrize("path", guarded_modules(), ids=lambda path: str(path.relative_to(APP)))
def test_no_core_module_imports_a_channel(path):
    assert channel_imports(path) == []


def test_the_check_catches_every_form_of_import():
    """Module level, inside a function, `from notifications import channels`, and relative."""
    source = (
        "import notifications.channels.email.delivery\n"
        "from notifications import channels\n"
        "def later():\n"
        "    from notifications.channels.email import delivery\n"
        "    from ...channels.email.backends import errors\n"
        "from notifications.core import channels as registry\n"  # the registry: allowed
    )
    found = forbidden(imported_modules(source, package="notifications.core.outbox"))
    assert found == [
        (1, "notifications.channels.email.delivery"), (2, "notifications.channels"),
        (4, "notifications.channels.email"), (4, "notifications.channels.email.delivery"),
        (5, "notifications.channels.email.backends"), (5, "notifications.channels.email.backends.errors"),
    ]
