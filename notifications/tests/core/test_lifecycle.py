"""The state machine: the only writer of a message's status, and transitions that check
the state they leave."""
from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from notifications.models import BounceType, Message, Status
from notifications.core.outbox import lifecycle
from notifications.channels.email.sending import send_simple_mail

APP = Path(__file__).resolve().parents[2]
OWNER = APP / "core" / "outbox" / "lifecycle.py"
STATUS_COLUMNS = {"status", "attempts", "next_attempt_at", "sent_at", "sealed_content", "error_message",
                  "error_code", "error_params"}
WRITES = {"update", "bulk_update", "create", "bulk_create", "get_or_create", "update_or_create", "save"}


def status_writes(path: Path) -> list[str]:
    """Each place in `path` that writes a status column: `.update(status=…)` and friends,
    `x.status = …`, `bulk_update(…, ["status"])`, or `Message(status=…)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in {"status", "attempts", "next_attempt_at"}:
                    found.append(f"{path.name}:{node.lineno} assigns .{target.attr}")
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        keywords = {keyword.arg for keyword in node.keywords}
        if name in WRITES | {"Message"} and "status" in keywords:  # noqa: SIM114 - two different messages
            found.append(f"{path.name}:{node.lineno} {name}(status=…)")
        elif name == "update" and keywords & STATUS_COLUMNS:
            found.append(f"{path.name}:{node.lineno} update({', '.join(sorted(keywords & STATUS_COLUMNS))})")
        if name == "bulk_update" and any("status" in ast.unparse(arg) for arg in node.args[1:]):
            found.append(f"{path.name}:{node.lineno} bulk_update(…status…)")
    return found


def test_no_module_but_the_state_machine_writes_a_status():
    sources = [path for path in APP.rglob("*.py") if "tests" not in path.parts and "migrations" not in path.parts]
    assert OWNER in sources
    writers = {str(path.relative_to(APP)): status_writes(path) for path in sources if path != OWNER}
    assert {path: found for path, found in writers.items() if found} == {}
    assert status_writes(OWNER), "the check must see the writes the state machine itself makes"


def test_the_check_would_catch_a_status_written_elsewhere(tmp_path):
    rogue = tmp_path / "rogue.py"
    rogue.write_text(
        "Message.objects.filter(pk=1).update(status='queued')\n"
        "message.status = 'sent'\n"
        "Message(status='queued', recipient_email='a@b.bj')\n"
        "Message.objects.filter(pk=1).update(attempts=0)\n"
        "Message.objects.filter(pk=1).update(sealed_content='')\n"
    )
    assert len(status_writes(rogue)) == 5


@pytest.fixture
def message(db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    [message] = send_simple_mail("a@rgz.bj", "Sujet", "Texte.", send_at=timezone.now() + timedelta(hours=1))
    return message


def put(message: Message, status: str, **fields) -> None:
    Message.objects.filter(pk=message.pk).update(status=status, **fields)  # the test arranges a state


def snapshot(message: Message) -> tuple:
    return tuple(Message.objects.filter(pk=message.pk).values_list(
        "status", "attempts", "next_attempt_at", "sent_at", "error_message", "updated_at", "bounce_type"
    ).get())


ILLEGAL = [
    (Status.SENT, lambda m: lifecycle.cancel(m.pk)),
    (Status.SENDING, lambda m: lifecycle.cancel(m.pk)),
    (Status.CANCELLED, lambda m: lifecycle.claim_due(lane=m.lane, limit=10, now=timezone.now() + timedelta(days=1))),
    (Status.SENT, lambda m: lifecycle.release([m.pk], next_attempt_at=timezone.now())),  # sent → queued
    (Status.FAILED, lambda m: lifecycle.record_sent([lifecycle.Sent(m.pk, "id", "srv", "a@b.bj", 1, timezone.now())])),
    (Status.QUEUED, lambda m: lifecycle.fail(lifecycle.Failure(m.pk, 1, timezone.now(), "permanent: x"))),
    (Status.DELIVERED, lambda m: lifecycle.retry_later(lifecycle.Failure(m.pk, 1, timezone.now(), "transient: x"),
                                                       next_attempt_at=timezone.now())),
    (Status.SENT, lambda m: lifecycle.retry_now([m.pk])),
    (Status.QUEUED, lambda m: lifecycle.mark_delivered(m.pk, at=timezone.now())),
    (Status.COMPLAINT, lambda m: lifecycle.mark_delivered(m.pk, at=timezone.now())),
    (Status.SCHEDULED, lambda m: lifecycle.mark_bounced(m.pk, bounce_type=BounceType.PERMANENT)),
    (Status.SUPPRESSED, lambda m: lifecycle.mark_simulated_sent(m.pk, at=timezone.now(), provider_message_id="x")),
]


@pytest.mark.parametrize("state, transition", ILLEGAL, ids=[f"{s}-{i}" for i, (s, _) in enumerate(ILLEGAL)])
def test_an_illegal_transition_changes_nothing_and_says_so(message, state, transition):
    put(message, state, next_attempt_at=timezone.now() - timedelta(minutes=1))
    before = snapshot(message)

    result = transition(message)

    assert snapshot(message) == before
    assert not result  # 0, [], False, or a Transition that did not happen
    if isinstance(result, lifecycle.Transition):
        assert result.status == state  # and says which state it found


def test_late_provider_events_never_move_a_message_backwards(message):
    put(message, Status.SENT)
    assert lifecycle.mark_bounced(message.pk, bounce_type=BounceType.TEMPORARY)
    assert lifecycle.mark_delivered(message.pk, at=timezone.now())  # a delivered after a soft bounce wins
    assert lifecycle.mark_bounced(message.pk, bounce_type=BounceType.PERMANENT, bounce_subtype="General")
    assert not lifecycle.mark_delivered(message.pk, at=timezone.now())
    assert not lifecycle.mark_bounced(message.pk, bounce_type=BounceType.TEMPORARY)
    assert not lifecycle.mark_complaint(message.pk)  # as strong as a permanent bounce
    message.refresh_from_db()
    assert (message.status, message.bounce_type, message.bounce_subtype) == (Status.BOUNCED, "permanent", "General")


def test_cancel_takes_scheduled_and_queued_messages_only(message):
    assert lifecycle.cancel(message.pk)
    assert Message.objects.get(pk=message.pk).status == Status.CANCELLED
    assert lifecycle.cancel(message.pk) == lifecycle.Transition(False, Status.CANCELLED)
    assert lifecycle.cancel("00000000-0000-0000-0000-000000000000") == lifecycle.Transition(False, None)


@pytest.mark.django_db
def test_a_lease_renewal_touches_only_rows_still_sending_and_keeps_them_from_the_sweep(default_templates, settings):
    """A live drain's keeper renews its claims (services.leases): the sweep leaves them alone until
    a whole lease passes without a renewal."""
    from notifications.channels.email.sending import send_mail_template
    from notifications.tests.support.payloads import WELCOME_VARS

    settings.OUTBOX_LEASE_SECONDS = 60
    held, recorded = (send_mail_template("onboarding_welcome", f"{name}@rgz.bj", WELCOME_VARS)[0]
                      for name in ("held", "recorded"))
    long_ago = timezone.now() - timedelta(minutes=5)
    Message.objects.filter(pk=held.pk).update(status=Status.SENDING, updated_at=long_ago)
    Message.objects.filter(pk=recorded.pk).update(status=Status.SENT, updated_at=long_ago)

    assert lifecycle.renew_leases([held.pk, recorded.pk]) == 1
    assert lifecycle.release_expired_leases(now=timezone.now()) == 0  # renewed: still its worker's
    assert Message.objects.get(pk=recorded.pk).updated_at == long_ago
    later = timezone.now() + timedelta(seconds=61)
    assert lifecycle.release_expired_leases(now=later) == 1  # no renewal for a lease: its worker died
