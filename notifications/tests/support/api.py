"""API test helpers: users in the contract's groups, keys made by the real command, and
validation of response bodies against the schema the app serves."""
from __future__ import annotations

import io
import json
import re
from functools import lru_cache

import jsonschema
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from referencing import Registry, Resource


def make_user(username: str, *groups: str):
    user = get_user_model().objects.create_user(username=username, password="x" * 12)
    user.groups.add(*Group.objects.filter(name__in=groups))
    assert user.groups.count() == len(groups), f"missing groups {groups}"
    return user


def create_key(user, *, test: bool = False) -> str:
    out = io.StringIO()
    call_command("create_api_key", user.username, *(["--test"] if test else []), stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


class ApiClient:
    """JSON requests with a bearer key through Django's test client.

    Asks for English answers (`Accept-Language: en`) unless `language` says otherwise
    (None: no header, so the server's default, French); tests of the languages pass it.
    """

    def __init__(self, key: str | None = None, *, language: str | None = "en") -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        if language:
            self.headers["Accept-Language"] = language

    def request(self, method: str, path: str, body=None, *, raw: bytes | str | None = None, headers=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json"} if data is not None else {}
        return getattr(self.client, method.lower())(
            path, data=data, headers={**self.headers, **(headers or {})}, **kwargs
        )

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)


@lru_cache(maxsize=1)
def served_schema() -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def _operation_path(schema: dict, path: str) -> str:
    path = path.split("?")[0].rstrip("/")
    for template in schema["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the served schema")


def assert_matches_schema(method: str, path: str, response) -> None:
    """The body validates against the schema's response for this operation and status."""
    schema = served_schema()
    operation = schema["paths"][_operation_path(schema, path)][method.lower()]
    responses = operation["responses"]
    spec = responses.get(str(response.status_code))
    assert spec is not None, f"{method} {path}: status {response.status_code} is not documented"
    body_schema = spec["content"]["application/json"]["schema"]
    registry = Registry().with_resource("urn:api", Resource.opaque(schema))
    resolved = json.loads(json.dumps(body_schema).replace('"#/components', '"urn:api#/components'))
    jsonschema.Draft202012Validator(resolved, registry=registry).validate(json.loads(response.content))
