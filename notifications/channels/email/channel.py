"""The email channel: its rows are email messages, delivered through `EMAIL_BACKEND`.

What the core used to know about email lives here now: the rendering columns a claim may
leave out when the backend sends the bytes built at enqueue, the simulator's failure
addresses, the masked content that is gone once sent, and the address kind `email`.
"""
from __future__ import annotations

from collections.abc import Sequence

from notifications.channels.email.backends.development import simulated_failure
from notifications.channels.email.provider import EmailBackendProvider
from notifications.channels.email.sealing import content_gone, content_gone_reason
from notifications.core.channels import Channel
from notifications.models import Message

#: What a delivery of prebuilt bytes never reads: a light claim leaves them out (deferred).
RENDERING = ("html_content", "text_content", "variables", "sealed_content")
SIMULATOR = "simulator"


class EmailChannel(Channel):
    key = "email"
    address_kind = "email"

    def make_provider(self) -> EmailBackendProvider:
        return EmailBackendProvider()

    def claim_leaves_out(self) -> frozenset[str]:
        """The rendering, when the backend sends a row's `mime` bytes as they are: the HTML
        and text (several KB a row, often TOASTed) are then neither read nor sent over."""
        return frozenset(RENDERING) if self.provider.sends_message_bytes() else frozenset()

    def prepare_claimed(self, rows: Sequence, *, left_out: frozenset[str]) -> None:
        """Rows without bytes (masked ones, rows queued before the column) get their
        rendering in one more query for the batch; on the others it stays deferred."""
        wanted = [name for name in RENDERING if name in left_out]
        by_pk = {row.pk: row for row in rows if not row.mime}
        if not wanted or not by_pk:
            return
        for pk, *values in Message.objects.filter(pk__in=list(by_pk)).values_list("pk", *wanted):
            for name, value in zip(wanted, values, strict=True):
                setattr(by_pk[pk], name, value)

    def simulated_failure(self, row) -> BaseException | None:
        return simulated_failure(row.address, server=SIMULATOR)

    def content_unavailable(self, row) -> str:
        return content_gone_reason() if content_gone(row) else ""

    def preview(self, row) -> str:
        return row.subject


__all__ = ["EmailChannel", "RENDERING"]
