"""Property-based run of the served schema with schemathesis: no 5xx, responses conform.

Authenticated as a Sender and as a Template editor; bounded by NOTIF_SCHEMATHESIS_EXAMPLES
per operation, role and mode (positive and negative) so it stays a few hundred cases.
"""
from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.generation.hypothesis.examples import generate_one
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from notifications.access.groups import SENDERS, TEMPLATE_EDITORS
from notifications.tests.support.api import create_key, make_user

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("NOTIF_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def keep_test_connection():
    """A WSGI request closes the DB connection when it ends; the test's transaction lives on
    that connection, so do what Django's test client does and keep it open."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schemathesis_finds_no_server_error_and_gets_201s(default_templates, keep_test_connection):
    """The schema's request examples run as schemathesis' explicit cases (as `st run` does), so
    the run itself sends valid requests and its 201s are validated like every other answer."""
    from config.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    keys = {
        "sender": create_key(make_user("fuzz-sender", SENDERS)),
        "editor": create_key(make_user("fuzz-editor", TEMPLATE_EDITORS)),
    }
    statuses: Counter[int] = Counter()
    validated: Counter[tuple[str, int]] = Counter()  # (operation, status) of answers that passed CHECKS
    cases = 0
    for operation in (result.ok() for result in schema.get_all_operations()):
        for key in keys.values():
            headers = {"Authorization": f"Bearer {key}"}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                def run(case):
                    nonlocal cases
                    response = case.call()
                    cases += 1
                    statuses[response.status_code] += 1
                    case.validate_response(response, checks=CHECKS)
                    validated[(operation.label, response.status_code)] += 1  # noqa: B023 - run in this loop

                if mode == GenerationMode.POSITIVE:
                    for strategy in operation.get_strategies_from_examples(headers=headers):
                        run = example(case=generate_one(strategy))(run)
                run = hypothesis_settings(
                    max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                )(given(case=operation.as_strategy(generation_mode=mode, headers=headers))(run))
                run()
    print(f"schemathesis: {cases} cases, statuses {dict(sorted(statuses.items()))}")
    assert not [code for code in statuses if code >= 500], statuses
    # Both of the send examples (004's welcome and incident), sent with the Sender's key.
    assert validated[("POST /api/v1/email/send", 201)] >= 2, validated
    assert 100 <= cases <= 40 * EXAMPLES  # bounded: a few hundred at the default
