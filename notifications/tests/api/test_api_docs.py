"""docs/API.md cannot drift from the API: every route of the served schema is documented,
and every worked example's request and answer is valid against that schema.

The examples are marked for this test: a line `` `METHOD /path` `` right before a request's
```json block, and a line `` `HTTP 201` `` right before its answer's.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from django.conf import settings
from referencing import Registry, Resource

from notifications.tests.support.api import _operation_path, served_schema

pytestmark = pytest.mark.django_db

API_MD = Path(settings.BASE_DIR) / "docs" / "API.md"
METHODS = "GET|POST|PUT|PATCH|DELETE"
REQUEST = re.compile(rf"^`({METHODS}) (/[^`\s]+)`([^\n]*)\n(?:```json\n(.*?)^```\n)?", re.MULTILINE | re.DOTALL)
ANSWER = re.compile(r"^`HTTP (\d{3})`[^\n]*\n```json\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def doc() -> str:
    return API_MD.read_text(encoding="utf-8")


def operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in served_schema()["paths"].items() for method in ops]


def examples() -> list[dict]:
    """Each request marker with its body (or None) and the answer that follows it."""
    text = doc()
    found = []
    for match in REQUEST.finditer(text):
        answer = ANSWER.search(text, match.end())
        nxt = REQUEST.search(text, match.end())
        assert answer and (nxt is None or answer.start() < nxt.start()), f"{match.group(0)[:80]!r} has no answer"
        found.append({
            "method": match.group(1), "path": match.group(2),
            "body": json.loads(match.group(4)) if match.group(4) is not None else None,
            "status": int(answer.group(1)), "answer": json.loads(answer.group(2)),
        })
    return found


def validator(fragment: dict) -> jsonschema.Draft202012Validator:
    schema = served_schema()
    registry = Registry().with_resource("urn:api", Resource.opaque(schema))
    resolved = json.loads(json.dumps(fragment).replace('"#/components', '"urn:api#/components'))
    return jsonschema.Draft202012Validator(resolved, registry=registry)


def operation(method: str, path: str) -> dict:
    schema = served_schema()
    return schema["paths"][_operation_path(schema, path)][method.lower()]


def test_every_route_of_the_schema_has_its_section():
    headings = set(re.findall(rf"^### ({METHODS}) (/\S+)$", doc(), re.MULTILINE))
    assert len(operations()) >= 9
    assert sorted(set(operations()) - headings) == []
    assert sorted(headings - set(operations())) == []


def test_every_route_has_a_worked_request_with_a_successful_answer():
    schema = served_schema()
    worked = {(e["method"], _operation_path(schema, e["path"])) for e in examples() if e["status"] < 300}
    assert sorted(set(operations()) - worked) == []


def test_every_example_request_body_is_valid_against_the_schema():
    bodies = [e for e in examples() if e["body"] is not None]
    assert len(bodies) >= 10
    for example in bodies:
        spec = operation(example["method"], example["path"]).get("requestBody")
        assert spec, f"{example['method']} {example['path']} takes no body"
        validator(spec["content"]["application/json"]["schema"]).validate(example["body"])


def test_every_example_answer_is_one_the_schema_documents():
    for example in examples():
        responses = operation(example["method"], example["path"])["responses"]
        where = f"{example['method']} {example['path']} -> {example['status']}"
        assert str(example["status"]) in responses, where
        answer = example["answer"]
        if example["status"] < 300:
            validator(responses[str(example["status"])]["content"]["application/json"]["schema"]).validate(answer)
        else:
            # {"detail": "..."} or {field: [messages]} (plus the `codes` of the same shape).
            fields = {key: value for key, value in answer.items() if key != "codes"}
            assert fields, where
            if "detail" in fields:
                assert isinstance(fields["detail"], str), where
            else:
                assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in fields.values()), where


def test_every_error_status_and_the_error_codes_section_are_documented():
    statuses = {e["status"] for e in examples()}
    assert {400, 401, 403, 404, 409, 413, 415, 422, 429} <= statuses
    assert re.search(r"^`HTTP 429` `Retry-After: \d+`", doc(), re.MULTILINE)
    assert re.search(r"^## Error codes$", doc(), re.MULTILINE)


REGION = re.compile(r"^<!-- example: (\S+) -->\n(.*?)^<!-- /example -->\n", re.MULTILINE | re.DOTALL)


def shape(value):
    """What must not drift: the keys at every level and the status, not ids, times or prose."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def regions(text: str) -> dict[str, dict]:
    found = {}
    for name, body in REGION.findall(text):
        request = REQUEST.search(body)
        answer = ANSWER.search(body)
        found[name] = {
            "request": f"{request.group(1)} {_operation_path(served_schema(), request.group(2))}",
            "body": shape(json.loads(request.group(4))) if request.group(4) else None,
            "status": int(answer.group(1)), "answer": shape(json.loads(answer.group(2))),
        }
    return found


def test_the_examples_still_show_what_the_app_answers():
    """docs/api_examples.py runs every example again on a fresh database; the page must show
    the same requests, statuses and answer shapes. When the API changes on purpose, run
    `.venv/bin/python docs/api_examples.py --write`."""
    result = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "docs" / "api_examples.py")],
        cwd=settings.BASE_DIR, env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    documented, today = regions(doc()), regions(result.stdout)
    assert len(today) >= 20 and sorted(documented) == sorted(today)
    stale = {name: {"documented": documented[name], "today": today[name]}
             for name in today if documented[name] != today[name]}
    assert stale == {}, "docs/API.md is stale: run .venv/bin/python docs/api_examples.py --write"
